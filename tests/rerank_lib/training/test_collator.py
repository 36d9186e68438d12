from __future__ import annotations

import pytest
import torch

from rerank_lib.errors import DataValidationError
from rerank_lib.training import CrossEncoderDataCollator


def test_columns_keep_their_order_and_label_is_found_by_name() -> None:
    rows = [{"z_query": "q1", "a_doc": "d1", "score": 0.5}, {"z_query": "q2", "a_doc": "d2", "score": 1.0}]
    batch = CrossEncoderDataCollator()(rows)
    assert list(batch) == ["z_query", "a_doc", "label"]
    assert batch["z_query"] == ["q1", "q2"] and batch["a_doc"] == ["d1", "d2"]
    assert torch.equal(batch["label"], torch.tensor([0.5, 1.0]))


def test_first_label_column_wins_and_lists_become_tensors() -> None:
    rows = [{"q": "q1", "docs": ["a", "b"], "labels": [1, 0], "scores": [9, 9]}]
    batch = CrossEncoderDataCollator()(rows)
    assert isinstance(batch["label"], list)
    assert torch.equal(batch["label"][0], torch.tensor([1.0, 0.0]))
    assert batch["scores"] == [[9, 9]]  # not a label any more: passed through as a column


def test_dataset_name_is_carried() -> None:
    batch = CrossEncoderDataCollator()([{"dataset_name": "wikiqa", "q": "x", "d": "y", "label": 1}])
    assert batch["dataset_name"] == "wikiqa"
    assert "dataset_name" not in [k for k in batch if k not in ("dataset_name",)]


def test_wrong_types_name_the_column_and_row() -> None:
    with pytest.raises(DataValidationError, match=r"Column 'd', row 1"):
        CrossEncoderDataCollator()([{"q": "a", "d": "b", "label": 1}, {"q": "a", "d": 3, "label": 0}])
    with pytest.raises(DataValidationError, match=r"Label column 'label', row 0"):
        CrossEncoderDataCollator()([{"q": "a", "d": "b", "label": "yes"}])
