"""Joining consecutive sentence candidates into passages."""

from __future__ import annotations

import pandas as pd
import pytest

from rerank_lib.data.passages import join_consecutive_sentences
from rerank_lib.errors import DataValidationError


def test_each_querys_sentences_become_passages_in_order_labelled_by_their_best_sentence() -> None:
    table = pd.DataFrame(
        {
            "query": ["q1"] * 5 + ["q2"] * 2,
            "document": ["a", "b", "c", "d", "e", "x", "y"],
            "label": [0, 0, 1, 0, 0, 0, 0],
            "sentence_id": range(7),
        }
    )
    joined = join_consecutive_sentences(table, 2)
    assert joined.to_dict("list") == {
        "query": ["q1", "q1", "q1", "q2"],
        "document": ["a b", "c d", "e", "x y"],
        "label": [0.0, 1.0, 0.0, 0.0],
    }
    assert join_consecutive_sentences(table, 1)["document"].tolist() == table["document"].tolist()


def test_bad_sizes_and_tables_name_the_dataset() -> None:
    table = pd.DataFrame({"query": ["q"], "document": ["a"], "label": [1.0]})
    with pytest.raises(DataValidationError, match=r"dataset 'wiki': passages need at least one sentence"):
        join_consecutive_sentences(table, 0, dataset="wiki")
    with pytest.raises(DataValidationError, match=r"dataset 'wiki'.*missing: \['label'\]"):
        join_consecutive_sentences(table.drop(columns="label"), 3, dataset="wiki")
