"""Reading BEIR folders: gzip corpora, qrels with or without a header, TREC's layout, and errors naming the line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rerank_lib.errors import DataValidationError
from rerank_lib.retrieval import document_text, load_beir


def test_load_beir_reads_gzip_corpus_and_header_qrels(scifact: Path) -> None:
    corpus, queries, qrels = load_beir(scifact, "test")
    assert corpus["d3"] == {"title": "Paris", "text": "paris is the capital city of france"}
    assert len(corpus) == 7 and len(queries) == 5
    assert qrels["q2"] == {"d2": 1, "d5": 1}
    assert qrels["q3"] == {"d6": 1, "d99": 1}
    assert "q4" not in qrels


def test_load_beir_reads_qrels_without_header_and_trec_layout(dl19: Path) -> None:
    _, _, qrels = load_beir(dl19)
    assert qrels["t1"] == {"p1": 3, "p2": 2, "p3": 1, "p5": 0}
    (dl19 / "qrels" / "dev.tsv").write_text("t1 0 p1 3\nt2 0 p4 1\n", encoding="utf-8")
    assert load_beir(dl19, "dev")[2] == {"t1": {"p1": 3}, "t2": {"p4": 1}}


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n', r"corpus.jsonl, line 2: invalid JSON"),
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"text": "no id"}\n', r"corpus.jsonl, line 2: missing or empty"),
        ("corpus.jsonl", '{"_id": "d1"}\n{"_id": "d1"}\n', r"line 2: duplicate corpus id 'd1'"),
        ("queries.jsonl", '["not", "an", "object"]\n', r"queries.jsonl, line 1: expected a JSON object"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n", r"line 3: score 'high'"),
        ("qrels/test.tsv", "q1\td1\t1\nq2\td2\n", r"test.tsv, line 2: expected 'query-id, corpus-id, score'"),
        ("qrels/test.tsv", "q1\td1\t1.5\n", r"line 1: score '1.5' of query 'q1' is not an integer"),
        ("qrels/test.tsv", "q1\td1\tnan\n", r"line 1: score 'nan' of query 'q1' is not an integer"),
    ],
)
def test_load_beir_names_the_bad_line(scifact: Path, file_name: str, content: str, message: str) -> None:
    if file_name == "corpus.jsonl":
        (scifact / "corpus.jsonl.gz").unlink()
    (scifact / file_name).write_text(content, encoding="utf-8")
    with pytest.raises(DataValidationError, match=message):
        load_beir(scifact)


def test_load_beir_tolerates_bom_and_blank_lines(scifact: Path) -> None:
    (scifact / "qrels" / "test.tsv").write_text("\ufeff\nquery-id\tcorpus-id\tscore\n\nq1\td3\t2\n", encoding="utf-8")
    assert load_beir(scifact)[2] == {"q1": {"d3": 2}}
    (scifact / "qrels" / "test.tsv").write_text("\ufeffq1\td3\t1\n", encoding="utf-8")
    assert load_beir(scifact)[2] == {"q1": {"d3": 1}}


def test_load_beir_missing_files(tmp_path: Path, scifact: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(DataValidationError, match="dev.tsv"):
        load_beir(scifact, "dev")


def test_gzipped_queries_are_read(scifact: Path) -> None:
    text = (scifact / "queries.jsonl").read_text(encoding="utf-8")
    (scifact / "queries.jsonl").unlink()
    with gzip.open(scifact / "queries.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    assert len(load_beir(scifact)[1]) == 5


def test_document_text_joins_title_and_text() -> None:
    assert document_text({"title": " Paris ", "text": "the capital"}) == "Paris the capital"
    assert document_text({"title": None, "text": "only text"}) == "only text"
    assert document_text("already a text") == "already a text"
