"""Margin-MSE: distil a teacher's score margins between a positive and each negative document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._inputs import check_column_count, check_same_length, label_matrix, text_column
from rerank_lib.losses._scoring import require_single_output, score_pairs
from rerank_lib.model import CrossEncoder


class MarginMSELoss(nn.Module):
    """MSE between the student's margins ``s(q, pos) - s(q, neg_i)`` and the teacher's margins.

    Matching margins instead of raw scores lets a student learn from a teacher on a different score scale (the
    standard recipe for distilling a large cross-encoder or an ensemble).

    | inputs | labels |
    |---|---|
    | (query, positive, negative_1, ..., negative_n) | margins, shape (batch, n) |
    | (query, positive, negative_1, ..., negative_n) | teacher scores, shape (batch, n + 1): positive first |

    With ``n + 1`` labels per row the margins are computed as ``scores[:, 0] - scores[:, 1:]``. With ``n == 1`` a
    1-D label tensor of margins is accepted as well. The loss is the mean over all ``batch * n`` margins.

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        activation_fn: applied to each score before the margins are taken.

    References:
        - Hofstätter et al., Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
          Distillation, 2020: https://arxiv.org/abs/2010.02666

    Example::

        loss = MarginMSELoss(model)
        value = loss(
            [["what is the capital of france"], ["paris is the capital"], ["berlin is big"]],
            torch.tensor([[9.1, 1.3]]),  # teacher scores: positive, negative
        )
    """

    citation = """@misc{hofstatter2020improving,
  title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
  author={Sebastian Hofst{\\"a}tter and Sophia Althammer and Michael Schr{\\"o}der and Mete Sertkan and Allan Hanbury},
  year={2020},
  eprint={2010.02666},
  archivePrefix={arXiv},
  primaryClass={cs.IR}
}"""

    def __init__(self, model: CrossEncoder, activation_fn: nn.Module | None = None) -> None:
        super().__init__()
        require_single_output(model, type(self).__name__)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        name = type(self).__name__
        check_column_count(name, inputs, "(query, positive, negative_1, ..., negative_n)", 3, None)
        columns = [text_column(name, inputs, 0, "query"), text_column(name, inputs, 1, "positive")]
        columns += [text_column(name, inputs, i, f"negative_{i - 1}") for i in range(2, len(inputs))]
        rows = check_same_length(name, columns)
        num_negatives = len(columns) - 2
        what = f"{num_negatives} margin(s) or {num_negatives + 1} teacher scores per row"
        targets = label_matrix(name, labels, rows, (num_negatives, num_negatives + 1), what)
        if targets.shape[1] == num_negatives + 1:
            targets = targets[:, :1] - targets[:, 1:]

        queries = columns[0]
        pairs = [(query, doc) for column in columns[1:] for query, doc in zip(queries, column, strict=True)]
        scores = self.activation_fn(score_pairs(self.model, pairs)).view(num_negatives + 1, rows)
        margins = (scores[0].unsqueeze(0) - scores[1:]).T  # (rows, n)
        return F.mse_loss(margins, targets.to(margins.device, dtype=margins.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        return {"activation_fn": activation_to_path(self.activation_fn)}
