"""WikiQA readers: expectations on the real data (data tests) and clear errors on broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerank_lib.data import read_wikiqa_pairs, read_wikiqa_reranking_samples
from rerank_lib.errors import DataValidationError

RAW = Path(__file__).resolve().parents[3] / "data" / "raw" / "wikiqa"


def test_real_train_file_reads_every_row_with_default_quoting() -> None:
    pairs = read_wikiqa_pairs(RAW / "WikiQA-train.tsv", expected_rows=20347)
    assert list(pairs.columns) == ["question", "sentence", "label"]
    assert set(pairs["label"].unique()) == {0.0, 1.0}
    assert 2000 < pairs["question"].nunique() < 2200  # questions are grouped by text, not by QuestionID
    # The release quotes a few fields that span tabs and lines; default quoting keeps them as single fields.
    assert 0 < pairs["sentence"].str.contains("\t").sum() <= 13


def test_real_test_file_gives_237_questions_with_both_labels() -> None:
    samples = read_wikiqa_reranking_samples(RAW / "WikiQA-test.tsv")
    assert len(samples) == 237
    assert all(s["positive"] and s["negative"] for s in samples)
    assert len({s["query"] for s in samples}) == 237


def test_row_count_mismatch_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("QuestionID\tQuestion\tSentenceID\tSentence\tLabel\nQ1\tq?\tS1\ts.\t1\n")
    with pytest.raises(DataValidationError, match="read 1 rows, expected 5"):
        read_wikiqa_pairs(path, expected_rows=5)


def test_bad_label_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("QuestionID\tQuestion\tSentenceID\tSentence\tLabel\nQ1\tq?\tS1\ts.\t1\nQ2\tq?\tS2\tt.\tmaybe\n")
    with pytest.raises(DataValidationError, match=r"row 3 .*'Label'.*'maybe'"):
        read_wikiqa_pairs(path)


def test_missing_file_hints_at_dvc_pull(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="dvc pull"):
        read_wikiqa_pairs(tmp_path / "absent.tsv")
