"""Helpers for evaluator tests: a model with chosen scores (tiny BEIR folders: tests/rerank_lib/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
