"""Position-aware ListMLE: Plackett-Luce likelihood of the ideal ranking, with heavier weight on top positions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._listwise import right_align, score_lists
from rerank_lib.losses._scoring import check_mini_batch_size, require_single_output, zero_loss
from rerank_lib.model import CrossEncoder

RankConvention = Literal["zero_based", "one_based"]
RANK_CONVENTIONS = ("zero_based", "one_based")


class PListMLELambdaWeight(nn.Module):
    """Weight of each rank position in PListMLELoss; the loss normalizes each list's weights to sum to 1.

    Two conventions of the paper's ``2^(n - r) - 1`` (a mistake at the top costs most), by name:

    * ``"zero_based"`` (default; sentence-transformers v4.0.1): ranks counted from 0, so the weights run from
      ``2^n - 1`` at the top to ``1`` at the bottom;
    * ``"one_based"`` (newer sentence-transformers releases): ranks counted from 1, from ``2^(n - 1) - 1`` to ``0``;
      the last document's step has no weight, and a one-document list no loss.

    The two differ after normalization (the ``- 1`` does not scale), so pick the one the recipe was tuned with. Both
    are computed divided by ``2^n`` (``2^-r - 2^-n``), which leaves the normalized weights unchanged and keeps lists
    longer than 127 documents from overflowing float32.

    Args:
        rank_discount_fn: optional ``fn(mask) -> weights``, as in sentence-transformers: it receives the (rows, width)
            bool mask of the left-packed lists and returns (rows, width) weights, e.g.
            ``lambda mask: 1.0 / torch.log2(torch.arange(2, mask.shape[1] + 2).expand(mask.shape))``; weights at
            padding positions are ignored. It replaces the convention's weights.
        convention: ``"zero_based"`` or ``"one_based"`` (see above).
    """

    def __init__(
        self,
        rank_discount_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        convention: RankConvention = "zero_based",
    ) -> None:
        super().__init__()
        if convention not in RANK_CONVENTIONS:
            raise ValueError(f"PListMLELambdaWeight: convention must be one of {RANK_CONVENTIONS}; got {convention!r}.")
        self.rank_discount_fn = rank_discount_fn
        self.convention = convention

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """(rows, width) weights for left-packed lists; 0 outside ``mask``."""
        if self.rank_discount_fn is not None:
            weights = torch.as_tensor(self.rank_discount_fn(mask), device=mask.device).float()
        else:
            first = 1 if self.convention == "one_based" else 0
            ranks = torch.arange(first, mask.shape[1] + first, device=mask.device, dtype=torch.float)
            lengths = mask.sum(dim=1, keepdim=True).float()
            weights = torch.exp2(-ranks.expand(mask.shape)) - torch.exp2(-lengths)
        return torch.where(mask, weights.expand(mask.shape), torch.zeros(mask.shape, device=mask.device))

    def get_config_dict(self) -> dict[str, Any]:
        fn = self.rank_discount_fn
        name = None if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
        return {"class": type(self).__name__, "params": {"rank_discount_fn": name, "convention": self.convention}}


DEFAULT_LAMBDA_WEIGHT = PListMLELambdaWeight()


def plistmle_loss(
    scores: torch.Tensor,
    grades: torch.Tensor,
    mask: torch.Tensor,
    lambda_weight: PListMLELambdaWeight | None,
    respect_input_order: bool,
) -> torch.Tensor:
    """Mean over non-empty lists of the (weighted) negative Plackett-Luce log-likelihood of the target order.

    The target order is the input order (``respect_input_order``) or the grades, highest first (stable: ties keep
    their input order). With target order ``pi`` the per-list loss is
    ``-sum_i w_i * (s_pi(i) - logsumexp_{j >= i} s_pi(j))`` with ``w`` normalized to sum 1, or ``w = 1`` (ListMLE).

    Args:
        scores, grades, mask: (rows, width) left-packed matrices; entries outside ``mask`` are ignored.
    """
    rows = mask.any(dim=1)
    if not bool(rows.any()):
        return zero_loss(scores.device) + scores.sum() * 0.0
    scores, grades, mask = scores[rows], grades[rows], mask[rows]
    if not respect_input_order:
        order = grades.masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True, stable=True)
        scores = scores.gather(1, order)
    if lambda_weight is None:
        weights = mask.float()
    else:
        weights = lambda_weight(mask)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=torch.finfo(weights.dtype).tiny)
    aligned_scores, aligned_mask = right_align(scores, mask)
    aligned_weights, _ = right_align(weights, mask)
    suffix_lse = torch.logcumsumexp(aligned_scores.flip(1), dim=1).flip(1)
    log_likelihood = (aligned_scores - suffix_lse) * aligned_weights
    return -log_likelihood.masked_fill(~aligned_mask, 0.0).sum(dim=1).mean()


class PListMLELoss(nn.Module):
    """Position-aware ListMLE (p-ListMLE): weighted Plackett-Luce likelihood of the target ranking of each list.

    ListMLE maximizes the probability that sampling documents without replacement in proportion to
    ``exp(score)`` reproduces the target ranking. p-ListMLE weights each step by its rank, so that getting the
    top of the list right matters most, which is what ranking metrics reward.

    | inputs | labels |
    |---|---|
    | (query, [doc_1, ..., doc_n]) | [grade_1, ..., grade_n] |

    Lists may differ in length within a batch. Documents with a negative grade are ignored (not scored).

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        lambda_weight: position weights; ``None`` gives plain ListMLE. The default counts ranks from 0 as
            sentence-transformers v4.0.1 does; ``PListMLELambdaWeight(convention="one_based")`` weighs as its newer
            releases do (in params: ``lambda_weight: {class: PListMLELambdaWeight, convention: one_based}``).
        activation_fn: applied to the logits first.
        respect_input_order: True: the documents are listed in target order (best first) and the grades only
            select which documents count; False: the target order is the grades, highest first.
        mini_batch_size: at most this many (query, document) pairs per forward pass; ``None``: all at once.

    References:
        - Lan et al., Position-Aware ListMLE: A Sequential Learning Process for Ranking, UAI 2014:
          https://auai.org/uai2014/proceedings/individuals/164.pdf
        - Xia et al., Listwise Approach to Learning to Rank: Theory and Algorithm, ICML 2008.

    Example::

        loss = PListMLELoss(model, respect_input_order=False)
        value = loss(
            [["what is the capital of france"], [["berlin is big", "paris is the capital", "cats sleep"]]],
            [torch.tensor([1.0, 2.0, 0.0])],
        )
    """

    citation = """@inproceedings{lan2014position,
  title={Position-Aware ListMLE: A Sequential Learning Process for Ranking},
  author={Lan, Yanyan and Zhu, Yadong and Guo, Jiafeng and Niu, Shuzi and Cheng, Xueqi},
  booktitle={Proceedings of the Thirtieth Conference on Uncertainty in Artificial Intelligence},
  pages={449--458},
  year={2014}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        lambda_weight: PListMLELambdaWeight | None = DEFAULT_LAMBDA_WEIGHT,
        activation_fn: nn.Module | None = None,
        respect_input_order: bool = True,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        require_single_output(model, type(self).__name__)
        self.model = model
        if lambda_weight is DEFAULT_LAMBDA_WEIGHT:
            lambda_weight = PListMLELambdaWeight()  # a fresh one: the shared default must never be mutated
        self.lambda_weight = lambda_weight
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.respect_input_order = bool(respect_input_order)
        self.mini_batch_size = check_mini_batch_size(type(self).__name__, mini_batch_size)

    def forward(self, inputs: Sequence[Any], labels: list[torch.Tensor]) -> torch.Tensor:
        batch = score_lists(self.model, type(self).__name__, inputs, labels, self.activation_fn, self.mini_batch_size)
        return plistmle_loss(batch.scores, batch.grades, batch.mask, self.lambda_weight, self.respect_input_order)

    def get_config_dict(self) -> dict[str, Any]:
        weight = None if self.lambda_weight is None else self.lambda_weight.get_config_dict()
        return {
            "lambda_weight": weight,
            "activation_fn": activation_to_path(self.activation_fn),
            "respect_input_order": self.respect_input_order,
            "mini_batch_size": self.mini_batch_size,
        }
