"""Tiny BEIR folders shared by the retrieval tests (reading) and the evaluation tests (the BEIR evaluator)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

SCIFACT_CORPUS = {
    "d1": ("Cats", "the cat sleeps on the red mat"),
    "d2": ("Dogs", "a dog runs in the green park"),
    "d3": ("Paris", "paris is the capital city of france"),
    "d4": ("Berlin", "berlin is the capital city of germany"),
    "d5": ("Rivers", "the river runs through the city"),
    "d6": ("Music", "a song and music for a child"),
    "d7": ("Trains", "the train and the bus in the city"),
}
SCIFACT_QUERIES = {
    "q1": "capital of france",
    "q2": "which dog runs",
    "q3": "music song",
    "q4": "city train",  # no qrels: not evaluated
    "q5": "cat",  # only a grade-0 judgment: not evaluated
}
SCIFACT_QRELS = [
    ("q1", "d3", 1),
    ("q2", "d2", 1),
    ("q2", "d5", 1),
    ("q3", "d6", 1),
    ("q3", "d99", 1),  # a judged document missing from the corpus: a relevant document never retrieved
    ("q5", "d1", 0),
    ("q9", "d1", 1),  # a query missing from queries.jsonl
]

DL19_CORPUS = {
    "p1": ("", "the capital of france is paris"),
    "p2": ("", "paris is a big city in france"),
    "p3": ("", "france is a country"),
    "p4": ("", "a small river in france"),
    "p5": ("", "the capital of germany is berlin"),
    "p6": ("", "rome is the capital of italy"),
}
DL19_QUERIES = {"t1": "what is the capital of france", "t2": "a river in germany"}
DL19_QRELS = [
    ("t1", "p1", 3),
    ("t1", "p2", 2),
    ("t1", "p3", 1),
    ("t1", "p5", 0),
    ("t2", "p4", 1),
    ("t2", "p5", 2),
    ("t2", "p6", 0),
]


@pytest.fixture
def scifact(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "scifact", SCIFACT_CORPUS, SCIFACT_QUERIES, SCIFACT_QRELS, gzip_corpus=True)


@pytest.fixture
def dl19(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "dl19", DL19_CORPUS, DL19_QUERIES, DL19_QRELS, qrels_header=False)


def write_beir(
    folder: Path,
    corpus: Mapping[str, tuple[str, str]],
    queries: Mapping[str, str],
    qrels: Sequence[tuple[str, str, int]],
    split: str = "test",
    gzip_corpus: bool = False,
    qrels_header: bool = True,
) -> Path:
    """A BEIR folder: corpus ``{id: (title, text)}``, queries ``{id: text}``, qrels rows ``(qid, doc_id, grade)``."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    lines = "".join(
        json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n" for doc_id, (title, text) in corpus.items()
    )
    if gzip_corpus:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        (folder / "corpus.jsonl").write_text(lines, encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": query_id, "text": text}) + "\n" for query_id, text in queries.items()),
        encoding="utf-8",
    )
    header = "query-id\tcorpus-id\tscore\n" if qrels_header else ""
    rows = "".join(f"{query_id}\t{doc_id}\t{grade}\n" for query_id, doc_id, grade in qrels)
    (folder / "qrels" / f"{split}.tsv").write_text(header + rows, encoding="utf-8")
    return folder


@pytest.fixture
def beir_writer() -> Callable[..., Path]:
    return write_beir
