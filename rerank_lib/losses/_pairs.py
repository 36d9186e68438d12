"""Shared input handling for the pointwise losses that score (a, b) pair columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rerank_lib.losses._inputs import check_column_count, check_same_length, label_vector, text_column


def pair_inputs(
    loss_name: str, inputs: Sequence[Sequence[str]], labels: Any
) -> tuple[list[tuple[str, str]], torch.Tensor]:
    """Validate two text columns and one label per row; return the pairs to score and the labels as a 1-D tensor."""
    check_column_count(loss_name, inputs, "(a, b)", 2, 2)
    first = text_column(loss_name, inputs, 0, "a")
    second = text_column(loss_name, inputs, 1, "b")
    rows = check_same_length(loss_name, [first, second])
    return list(zip(first, second, strict=True)), label_vector(loss_name, labels, rows)
