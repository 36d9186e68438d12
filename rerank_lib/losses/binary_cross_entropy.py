"""Binary cross-entropy on one logit per pair: the standard pointwise reranker loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._pairs import pair_inputs
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
        self.bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> torch.Tensor:
        pairs = pair_inputs(type(self).__name__, inputs, labels)
        logits = self.activation_fn(self.model.score_pairs(pairs).view(-1))
        return self.bce(logits, labels.to(logits.device, dtype=logits.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        pos_weight = None if self.pos_weight is None else float(self.pos_weight)
        return {"activation_fn": activation_to_path(self.activation_fn), "pos_weight": pos_weight}
