"""ListNet: cross-entropy between the softmax of the grades and the softmax of the scores, per query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._listwise import score_lists
from rerank_lib.losses._scoring import check_mini_batch_size, require_single_output, zero_loss
from rerank_lib.model import CrossEncoder


def listnet_loss(scores: torch.Tensor, grades: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over queries with at least one document of ``-sum softmax(grades) * log_softmax(scores)``.

    Args:
        scores, grades: (rows, width) float tensors; entries outside ``mask`` are ignored whatever they hold.
        mask: (rows, width) bool, True for the documents that count.
    """
    rows = mask.any(dim=1)
    if not bool(rows.any()):
        return zero_loss(scores.device) + scores.sum() * 0.0
    scores, grades, mask = scores[rows], grades[rows], mask[rows]
    log_probs = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    targets = torch.softmax(grades.masked_fill(~mask, float("-inf")), dim=1)
    cross_entropy = -torch.where(mask, targets * log_probs, torch.zeros_like(log_probs)).sum(dim=1)
    return cross_entropy.mean()


class ListNetLoss(nn.Module):
    """ListNet (top-one probability): softmax cross-entropy between grade and score distributions over each list.

    Each query's documents are scored; the target distribution is ``softmax(grades)`` and the loss is its
    cross-entropy with ``softmax(scores)``, averaged over the queries that have at least one document.

    | inputs | labels |
    |---|---|
    | (query, [doc_1, ..., doc_n]) | [grade_1, ..., grade_n] |

    Lists may differ in length within a batch. Documents with a negative grade are ignored (not scored).

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        activation_fn: applied to the logits before the softmax.
        mini_batch_size: at most this many (query, document) pairs per forward pass; ``None``: all at once.

    References:
        - Cao et al., Learning to Rank: From Pairwise Approach to Listwise Approach, ICML 2007:
          https://dl.acm.org/doi/10.1145/1273496.1273513

    Example::

        loss = ListNetLoss(model)
        value = loss(
            [["what is the capital of france"], [["paris is the capital", "berlin is big", "cats sleep"]]],
            [torch.tensor([2.0, 1.0, 0.0])],
        )
    """

    citation = """@inproceedings{cao2007learning,
  title={Learning to Rank: From Pairwise Approach to Listwise Approach},
  author={Cao, Zhe and Qin, Tao and Liu, Tie-Yan and Tsai, Ming-Feng and Li, Hang},
  booktitle={Proceedings of the 24th International Conference on Machine Learning},
  pages={129--136},
  year={2007}
}"""

    def __init__(
        self, model: CrossEncoder, activation_fn: nn.Module | None = None, mini_batch_size: int | None = None
    ) -> None:
        super().__init__()
        require_single_output(model, type(self).__name__)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = check_mini_batch_size(type(self).__name__, mini_batch_size)

    def forward(self, inputs: Sequence[Any], labels: list[torch.Tensor]) -> torch.Tensor:
        batch = score_lists(self.model, type(self).__name__, inputs, labels, self.activation_fn, self.mini_batch_size)
        return listnet_loss(batch.scores, batch.grades, batch.mask)

    def get_config_dict(self) -> dict[str, Any]:
        return {"activation_fn": activation_to_path(self.activation_fn), "mini_batch_size": self.mini_batch_size}
