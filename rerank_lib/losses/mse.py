"""Mean squared error between a pair's score and a target score: distillation from a teacher's pointwise scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._pairs import pair_inputs
from rerank_lib.losses._scoring import require_single_output, score_pairs
from rerank_lib.model import CrossEncoder


class MSELoss(nn.Module):
    """Pointwise MSE between ``activation_fn(logit)`` and a float target per pair.

    Typical use is knowledge distillation: the targets are a stronger teacher reranker's scores for the same pairs,
    so the student learns the teacher's full score scale rather than binary relevance.

    | inputs | labels |
    |---|---|
    | (a, b) pairs | float target score |

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        activation_fn: applied to the logits before the squared error (Identity: regress raw logits; Sigmoid when
            the teacher's scores are probabilities).

    References:
        - Hofstätter et al., Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
          Distillation, 2020 (https://arxiv.org/abs/2010.02666), for distillation from teacher scores.

    Example::

        loss = MSELoss(model)
        value = loss([["what is the capital of france"], ["paris is the capital"]], torch.tensor([8.5]))
    """

    citation = ""

    def __init__(self, model: CrossEncoder, activation_fn: nn.Module | None = None) -> None:
        super().__init__()
        require_single_output(model, type(self).__name__)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> torch.Tensor:
        pairs, targets = pair_inputs(type(self).__name__, inputs, labels)
        scores = self.activation_fn(score_pairs(self.model, pairs))
        return F.mse_loss(scores, targets.to(scores.device, dtype=scores.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        return {"activation_fn": activation_to_path(self.activation_fn)}
