"""Readers for WikiQA (Microsoft Research), keeping the quirks of its public release.

* ``WikiQA-train.tsv``: 5 columns; a few rows hold stray tabs and quotes, so it is read with default CSV
  quoting and the row count is checked. QuestionID differs on every row: questions are grouped by text.
* ``WikiQA-test.tsv``: the official 7-column format; it must be read with quoting off or rows merge.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from rerank_lib.errors import DataValidationError

TRAIN_COLUMNS = ["QuestionID", "Question", "SentenceID", "Sentence", "Label"]
TEST_COLUMNS = ["QuestionID", "Question", "DocumentID", "DocumentTitle", "SentenceID", "Sentence", "Label"]
TRAIN_ROWS = 20347  # WikiQA-train.tsv, read with default quoting
TEST_ROWS = 6165  # WikiQA-test.tsv, read with quoting off


def _read_tsv(path: Path, columns: list[str], quoting: int) -> pd.DataFrame:
    if not path.is_file():
        raise DataValidationError(f"WikiQA file {path} does not exist; run `dvc pull` to fetch the raw data.")
    frame = pd.read_csv(path, sep="\t", quoting=quoting, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}.")
    labels = pd.to_numeric(frame["Label"], errors="coerce")
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        row = int(bad.idxmax())
        raise DataValidationError(
            f"{path}: row {row + 2} (line, counting the header), column 'Label': expected 0 or 1, "
            f"got {frame['Label'].iloc[row]!r}."
        )
    frame["Label"] = labels.astype(int)
    return frame


def read_wikiqa_pairs(path: str | Path, expected_rows: int | None = None) -> pd.DataFrame:
    """Labelled pairs ``(question, sentence, label)`` from a WikiQA train/dev file."""
    path = Path(path)
    frame = _read_tsv(path, TRAIN_COLUMNS, quoting=csv.QUOTE_MINIMAL)
    if expected_rows is not None and len(frame) != expected_rows:
        raise DataValidationError(
            f"{path}: read {len(frame)} rows, expected {expected_rows}; the quoting of the file may have changed."
        )
    return pd.DataFrame(
        {"question": frame["Question"], "sentence": frame["Sentence"], "label": frame["Label"].astype(float)}
    )


def read_wikiqa_test_pairs(path: str | Path, expected_rows: int | None = None) -> pd.DataFrame:
    """Labelled pairs ``(question, sentence, label)`` from the official 7-column test file (read with quoting off)."""
    path = Path(path)
    frame = _read_tsv(path, TEST_COLUMNS, quoting=csv.QUOTE_NONE)
    if expected_rows is not None and len(frame) != expected_rows:
        raise DataValidationError(
            f"{path}: read {len(frame)} rows, expected {expected_rows}; the file must be read with quoting off."
        )
    return pd.DataFrame(
        {"question": frame["Question"], "sentence": frame["Sentence"], "label": frame["Label"].astype(float)}
    )


def read_wikiqa_reranking_samples(path: str | Path) -> list[dict[str, Any]]:
    """One reranking sample per test question with at least one correct and one wrong sentence."""
    path = Path(path)
    frame = _read_tsv(path, TEST_COLUMNS, quoting=csv.QUOTE_NONE)
    samples = []
    for question, group in frame.groupby("Question", sort=False):
        positives = group.loc[group["Label"] == 1, "Sentence"].tolist()
        negatives = group.loc[group["Label"] == 0, "Sentence"].tolist()
        if positives and negatives:
            samples.append({"query": question, "positive": positives, "negative": negatives})
    return samples
