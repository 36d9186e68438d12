"""ADR-MSE: the approximate discounted rank MSE of Rank-DistiLLM, for distilling a teacher's ranking into a reranker.

Written here from the paper's definition (Schlatt et al., 2025, Section 3): the student's rank of each document is
approximated by ApproxRank, a sum of sigmoids over score differences, and compared with the teacher's rank in a
squared error that is discounted like nDCG, so the top of the teacher's ranking matters most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._listwise import score_lists
from rerank_lib.losses._scoring import check_mini_batch_size, require_single_output, zero_loss
from rerank_lib.model import CrossEncoder

Discount = Literal["log2", "reciprocal"]
DISCOUNTS = ("log2", "reciprocal", None)


def approximate_ranks(scores: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """ApproxRank: ``1 + sum_{j != i} sigmoid((s_j - s_i) / temperature)`` over the documents of the same list.

    A document outscored by every other document gets rank ``n``; one that outscores them all gets rank 1. As the
    temperature goes to 0 the sum becomes the count of higher-scored documents, i.e. the true (1-based) rank.
    """
    differences = (scores.unsqueeze(1) - scores.unsqueeze(2)) / temperature  # [row, i, j] = (s_j - s_i) / T
    others = mask.unsqueeze(1) & ~torch.eye(scores.shape[1], dtype=torch.bool, device=scores.device)
    return 1.0 + torch.where(others, torch.sigmoid(differences), torch.zeros_like(differences)).sum(dim=2)


def target_ranks(grades: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1-based ranks of the documents by grade, highest first; equal grades keep their input order."""
    order = grades.masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True, stable=True)
    positions = torch.arange(1, grades.shape[1] + 1, device=grades.device, dtype=grades.dtype)
    return torch.empty_like(grades).scatter_(1, order, positions.expand_as(grades).contiguous())


def adr_mse_loss(
    scores: torch.Tensor,
    grades: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
    discount: Discount | None = "log2",
) -> torch.Tensor:
    """Mean over every counted document of ``discount(r) * (r - approx_rank)^2``, ``r`` the teacher's rank.

    ``discount``: ``"log2"`` is the paper's ``1 / log2(1 + r)``; ``"reciprocal"`` is ``1 / r``; ``None`` weighs every
    rank alike (ApproxRankMSE). The mean is pooled over the documents of the batch, as for equal-length lists in the
    paper's implementation; padding and ignored documents count nowhere.
    """
    if not bool(mask.any()):
        return zero_loss(scores.device) + scores.sum() * 0.0
    teacher = target_ranks(grades, mask)
    student = approximate_ranks(scores, mask, temperature)
    if discount == "log2":
        weights = 1.0 / torch.log2(1.0 + teacher)
    elif discount == "reciprocal":
        weights = 1.0 / teacher
    else:
        weights = torch.ones_like(teacher)
    errors = torch.where(mask, weights * (teacher - student) ** 2, torch.zeros_like(student))
    return errors.sum() / mask.sum()


class ADRMSELoss(nn.Module):
    """ADR-MSE (approximate discounted rank MSE): the listwise distillation loss of Rank-DistiLLM.

    The grades of each list (typically a teacher's scores, e.g. an LLM reranker's ranking turned into grades) give
    the target rank of each document. The model's scores give a differentiable approximate rank (ApproxRank:
    ``1 + sum_{j != i} sigmoid((s_j - s_i) / temperature)``). The loss is the squared difference between the two,
    weighted by ``1 / log2(1 + target rank)`` so that mistakes at the top cost most, averaged over the documents.
    Only the order of the grades matters, not their scale: the loss distils a ranking, not scores.

    | inputs | labels |
    |---|---|
    | (query, [doc_1, ..., doc_n]) | [grade_1, ..., grade_n] |

    Lists may differ in length within a batch. Documents with a negative grade are ignored (not scored). Equal
    grades are ranked in input order.

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        temperature: of the sigmoid in ApproxRank; smaller is closer to the hard rank (and to vanishing gradients).
        discount: ``"log2"`` (the paper's), ``"reciprocal"`` (``1 / r``) or ``None`` (no discount).
        activation_fn: applied to the logits first.
        mini_batch_size: at most this many (query, document) pairs per forward pass; ``None``: all at once.

    References:
        - Schlatt et al., Rank-DistiLLM: Closing the Effectiveness Gap Between Cross-Encoders and LLMs for Passage
          Re-ranking, ECIR 2025: https://arxiv.org/abs/2405.07920
        - Qin et al., A General Approximation Framework for Direct Optimization of Information Retrieval Measures,
          Information Retrieval 13, 2010 (ApproxRank).

    Example::

        loss = ADRMSELoss(model)
        value = loss(
            [["what is the capital of france"], [["paris is the capital", "berlin is big", "cats sleep"]]],
            [torch.tensor([0.9, 0.4, 0.1])],
        )
    """

    citation = """@inproceedings{schlatt2025rankdistillm,
  title={Rank-DistiLLM: Closing the Effectiveness Gap Between Cross-Encoders and LLMs for Passage Re-ranking},
  author={Schlatt, Ferdinand and Fr{\\"o}be, Maik and Scells, Harrisen and Zhuang, Shengyao and Koopman, Bevan and
    Zuccon, Guido and Stein, Benno and Potthast, Martin and Hagen, Matthias},
  booktitle={Advances in Information Retrieval, 47th European Conference on Information Retrieval, ECIR 2025},
  pages={323--334},
  year={2025}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        temperature: float = 1.0,
        discount: Discount | None = "log2",
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        require_single_output(model, type(self).__name__)
        if not temperature > 0:
            raise ValueError(f"{type(self).__name__}: temperature must be positive; got {temperature!r}.")
        if discount not in DISCOUNTS:
            raise ValueError(f"{type(self).__name__}: discount must be one of {DISCOUNTS}; got {discount!r}.")
        self.model = model
        self.temperature = float(temperature)
        self.discount = discount
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = check_mini_batch_size(type(self).__name__, mini_batch_size)

    def forward(self, inputs: Sequence[Any], labels: list[torch.Tensor]) -> torch.Tensor:
        batch = score_lists(self.model, type(self).__name__, inputs, labels, self.activation_fn, self.mini_batch_size)
        return adr_mse_loss(batch.scores, batch.grades, batch.mask, self.temperature, self.discount)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "discount": self.discount,
            "activation_fn": activation_to_path(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }
