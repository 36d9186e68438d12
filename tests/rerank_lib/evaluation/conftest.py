"""Helpers for evaluator tests: a model with chosen scores, and a writer for tiny BEIR folders."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest


class TableModel:
    """Scores each pair from a lookup (by passage, or by a function of the pair); records how it was called."""

    def __init__(self, scores: Mapping[str, Any] | Callable[[str, str], Any], num_labels: int = 1) -> None:
        self.scores = scores
        self.num_labels = num_labels
        self.calls: list[dict[str, Any]] = []

    def predict(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 32, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        self.calls.append({"pairs": len(pairs), "batch_size": batch_size, "show_progress_bar": show_progress_bar})
        if callable(self.scores):
            values = [self.scores(query, passage) for query, passage in pairs]
        else:
            values = [self.scores[passage] for _, passage in pairs]
        return np.asarray(values, dtype=np.float32)


@pytest.fixture
def table_model() -> type[TableModel]:
    return TableModel


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
