"""Cross-entropy over several output labels per pair: for classification-style cross-encoders (e.g. NLI)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rerank_lib.activation import activation_to_path
from rerank_lib.errors import DataValidationError
from rerank_lib.losses._pairs import pair_inputs
from rerank_lib.losses._scoring import loss_dtype
from rerank_lib.model import CrossEncoder


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy between a pair's ``num_labels`` logits and its class id.

    | inputs | labels |
    |---|---|
    | (a, b) pairs | class id (int) in [0, num_labels) |

    Args:
        model: a CrossEncoder with ``num_labels > 1``.
        activation_fn: applied to the logits before the cross-entropy.

    Example::

        loss = CrossEntropyLoss(model)
        value = loss([["a man sleeps"], ["a person rests"]], torch.tensor([0]))
    """

    citation = ""

    def __init__(self, model: CrossEncoder, activation_fn: nn.Module | None = None) -> None:
        super().__init__()
        if model.num_labels < 2:
            raise ValueError(f"CrossEntropyLoss needs a model with num_labels > 1; this one has {model.num_labels}.")
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.ce = nn.CrossEntropyLoss()

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> torch.Tensor:
        pairs, targets = pair_inputs(type(self).__name__, inputs, labels)
        bad = (targets != targets.round()) | (targets < 0) | (targets >= self.model.num_labels)
        if bad.any():
            row = int(bad.nonzero()[0])
            raise DataValidationError(
                f"CrossEntropyLoss: label at row {row} is {targets[row].item()}; "
                f"expected a class id in [0, {self.model.num_labels})."
            )
        logits = self.activation_fn(loss_dtype(self.model.score_pairs(pairs)))
        return self.ce(logits, targets.to(logits.device, dtype=torch.long))

    def get_config_dict(self) -> dict[str, Any]:
        return {"activation_fn": activation_to_path(self.activation_fn)}
