"""Binary cross-entropy on one logit per pair: the standard pointwise reranker loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rerank_lib.activation import activation_to_path
from rerank_lib.errors import DataValidationError
from rerank_lib.losses._pairs import pair_inputs
from rerank_lib.losses._scoring import score_pairs
from rerank_lib.model import CrossEncoder


class BinaryCrossEntropyLoss(nn.Module):
    """Pointwise BCE-with-logits between each pair's score and its label in [0, 1].

    | inputs | labels |
    |---|---|
    | (a, b) pairs | float in [0, 1]: 1 relevant, 0 not (or a soft target) |

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        activation_fn: applied to the logits before BCE-with-logits (Identity keeps them raw).
        pos_weight: weight of positive examples, useful when negatives outnumber positives.

    Example::

        loss = BinaryCrossEntropyLoss(model)
        value = loss([["q1", "q2"], ["passage 1", "passage 2"]], torch.tensor([1.0, 0.0]))
    """

    citation = ""

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = None,
        pos_weight: torch.Tensor | float | None = None,
    ) -> None:
        super().__init__()
        if model.num_labels != 1:
            raise ValueError(
                f"BinaryCrossEntropyLoss needs a model with num_labels=1; this one has {model.num_labels}."
            )
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        if pos_weight is not None and not isinstance(pos_weight, torch.Tensor):
            pos_weight = torch.tensor(float(pos_weight))
        self.pos_weight = pos_weight

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> torch.Tensor:
        pairs, targets = pair_inputs(type(self).__name__, inputs, labels)
        if ((targets < 0) | (targets > 1)).any():
            row = int(((targets < 0) | (targets > 1)).nonzero()[0])
            raise DataValidationError(
                f"BinaryCrossEntropyLoss: label at row {row} is {float(targets[row])}; labels must lie in [0, 1]."
            )
        logits = self.activation_fn(score_pairs(self.model, pairs))
        # pos_weight follows the scores' device: the trainer moves the model, not the loss.
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits.device, dtype=logits.dtype)
        return F.binary_cross_entropy_with_logits(
            logits, targets.to(logits.device, dtype=logits.dtype), pos_weight=pos_weight
        )

    def get_config_dict(self) -> dict[str, Any]:
        pos_weight = None if self.pos_weight is None else float(self.pos_weight)
        return {"activation_fn": activation_to_path(self.activation_fn), "pos_weight": pos_weight}
