"""Shared input handling for the listwise losses: (query, [documents]) rows with one grade per document.

Documents with a negative grade are ignored: they are not scored at all, so they cannot change the loss or the
gradients. The kept documents of each row are packed to the left of a (rows, width) matrix; ``mask`` marks them.
Every listwise loss computes its value from the masked matrix only, so neither the number of ignored documents
nor the padding width (set by the longest list in the batch) changes the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rerank_lib.losses._inputs import check_column_count, check_same_length, grade_lists, list_column, text_column
from rerank_lib.losses._scoring import score_pairs


@dataclass
class ListBatch:
    """Scores and grades of the kept documents, packed left; padding holds 0 and ``mask`` is False there."""

    scores: torch.Tensor  # (rows, width) activated scores, float32 or float64
    grades: torch.Tensor  # (rows, width) grades in the scores' dtype, all >= 0 where mask is True
    mask: torch.Tensor  # (rows, width) bool

    @property
    def width(self) -> int:
        return self.scores.shape[1]


def listwise_columns(
    loss_name: str, inputs: Sequence[Any], labels: Any
) -> tuple[list[str], list[list[str]], list[torch.Tensor]]:
    """Validate (query, [documents]) columns and per-document grades."""
    check_column_count(loss_name, inputs, "(query, [documents])", 2, 2)
    queries = text_column(loss_name, inputs, 0, "query")
    docs = list_column(loss_name, inputs, 1, "documents")
    check_same_length(loss_name, [queries, docs])
    return queries, docs, grade_lists(loss_name, labels, docs)


def score_lists(
    model: Any,
    loss_name: str,
    inputs: Sequence[Any],
    labels: Any,
    activation_fn: nn.Module,
    mini_batch_size: int | None,
) -> ListBatch:
    """Score the documents with a non-negative grade and pack scores, grades and mask into (rows, width) matrices."""
    queries, docs, grades = listwise_columns(loss_name, inputs, labels)
    keep = [row_grades >= 0 for row_grades in grades]
    pairs = [
        (query, doc)
        for query, row_docs, row_keep in zip(queries, docs, keep, strict=True)
        for doc, kept in zip(row_docs, row_keep.tolist(), strict=True)
        if kept
    ]
    counts = torch.tensor([int(row_keep.sum()) for row_keep in keep])
    width = int(counts.max())
    device = model.device
    mask = (torch.arange(width).unsqueeze(0) < counts.unsqueeze(1)).to(device)
    kept_grades = torch.cat([row_grades[row_keep] for row_grades, row_keep in zip(grades, keep, strict=True)])
    if not pairs:
        empty = torch.zeros(mask.shape, device=device)
        return ListBatch(scores=empty, grades=empty.clone(), mask=mask)
    scores = activation_fn(score_pairs(model, pairs, mini_batch_size))
    score_matrix = scores.new_zeros(mask.shape).masked_scatter(mask, scores)
    grade_matrix = scores.new_zeros(mask.shape).masked_scatter(mask, kept_grades.to(device, scores.dtype))
    return ListBatch(scores=score_matrix, grades=grade_matrix, mask=mask)


def right_align(values: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's left-packed valid entries to the right end (padding first), keeping their order.

    Suffix sums then never run over padding, which keeps them finite without -inf fills (whose gradients are NaN).
    """
    width = values.shape[1]
    shift = width - mask.sum(dim=1, keepdim=True)
    positions = torch.arange(width, device=values.device).unsqueeze(0)
    source = (positions - shift).clamp(min=0)
    aligned_mask = positions >= shift
    aligned = values.gather(1, source).masked_fill(~aligned_mask, fill)
    return aligned, aligned_mask
