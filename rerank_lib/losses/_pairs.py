"""Shared input handling for the pointwise losses that score (a, b) pair columns."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rerank_lib.errors import DataValidationError


def pair_inputs(loss_name: str, inputs: Sequence[Sequence[str]], labels: torch.Tensor | None) -> list[tuple[str, str]]:
    """Validate two text columns and a label per row; return the pairs to score."""
    if len(inputs) != 2:
        raise DataValidationError(f"{loss_name} expects exactly two text columns (a, b); got {len(inputs)} columns.")
    if labels is None:
        raise DataValidationError(f"{loss_name} needs a label column (label, labels, score or scores).")
    if len(labels) != len(inputs[0]):
        raise DataValidationError(f"{loss_name}: {len(inputs[0])} pairs but {len(labels)} labels.")
    return list(zip(inputs[0], inputs[1], strict=True))
