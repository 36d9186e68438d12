"""Seeded splits: deterministic, grouped, order-independent and close to the requested fractions."""

from __future__ import annotations

import pandas as pd
import pytest

from rerank_lib.data import split_frame
from rerank_lib.errors import DataValidationError

FRAME = pd.DataFrame({"query": [f"q{i // 3}" for i in range(3000)], "document": [f"d{i}" for i in range(3000)]})
FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def test_same_seed_same_split_other_seed_other_split() -> None:
    first, again = split_frame(FRAME, FRACTIONS, seed=1, group_by="query"), split_frame(FRAME, FRACTIONS, 1, "query")
    other = split_frame(FRAME, FRACTIONS, seed=2, group_by="query")
    assert all(first[name].equals(again[name]) for name in FRACTIONS)
    assert not first["test"].equals(other["test"])


def test_groups_stay_together_sizes_are_close_and_rows_keep_order() -> None:
    parts = split_frame(FRAME, FRACTIONS, seed=0, group_by="query")
    assert sum(len(part) for part in parts.values()) == len(FRAME)
    queries = [set(part["query"]) for part in parts.values()]
    assert not (queries[0] & queries[1]) and not (queries[0] & queries[2]) and not (queries[1] & queries[2])
    assert abs(len(parts["train"]) / len(FRAME) - 0.8) < 0.05
    assert parts["train"]["document"].tolist() == sorted(parts["train"]["document"], key=lambda d: int(d[1:]))


def test_split_does_not_depend_on_row_order() -> None:
    shuffled = FRAME.sample(frac=1.0, random_state=0).reset_index(drop=True)
    first = split_frame(FRAME, FRACTIONS, seed=0, group_by="query")
    second = split_frame(shuffled, FRACTIONS, seed=0, group_by="query")
    assert set(first["test"]["document"]) == set(second["test"]["document"])


def test_bad_fractions_and_group_column() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        split_frame(FRAME, {"train": 0.8, "test": 0.1}, seed=0)
    with pytest.raises(DataValidationError, match=r"dataset 'toy': split group column\(s\) \['topic'\]"):
        split_frame(FRAME, FRACTIONS, seed=0, group_by="topic", dataset="toy")
