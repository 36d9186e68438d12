"""LambdaLoss: pairwise logistic loss weighted to bound NDCG, with the weighting schemes of Wang et al. (2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._listwise import score_lists
from rerank_lib.losses._scoring import check_mini_batch_size, require_single_output, zero_loss
from rerank_lib.model import CrossEncoder


class BaseWeightingScheme(nn.Module):
    """Weights of each (i, j) pair of rank positions (1-based, in predicted order) in LambdaLoss.

    ``forward(gain, discount, true_sorted)`` gets, per list in predicted order, the normalized gains
    ``(2^grade - 1) / maxDCG`` (0 at padding), the discounts ``log2(1 + rank)`` as a (1, width) tensor and the grades
    (0 at padding); it returns weights broadcastable to (rows, width, width). Weights at padding are ignored.
    """

    #: True when the loss sums over every pair of valid documents, not only pairs with grade_i > grade_j.
    uses_all_pairs = False

    def forward(self, gain: torch.Tensor, discount: torch.Tensor, true_sorted: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_config_dict(self) -> dict[str, Any]:
        """Class name and parameters, for the model card."""
        return {"class": type(self).__name__, "params": {}}


class NoWeightingScheme(BaseWeightingScheme):
    """Every pair weighs 1: RankNet's loss."""

    def forward(self, gain: torch.Tensor, discount: torch.Tensor, true_sorted: torch.Tensor) -> torch.Tensor:
        return torch.ones((), device=gain.device)


class NDCGLoss1Scheme(BaseWeightingScheme):
    """``G_i / D_i`` over all pairs of valid documents: the loose NDCG bound (NDCG-Loss1 in the paper)."""

    uses_all_pairs = True

    def forward(self, gain: torch.Tensor, discount: torch.Tensor, true_sorted: torch.Tensor) -> torch.Tensor:
        return (gain / discount).unsqueeze(2)


def _rank_distance_deltas(width: int, device: torch.device) -> torch.Tensor:
    """``|1 / log2(1 + |i - j|) - 1 / log2(2 + |i - j|)|`` for i != j, 0 on the diagonal: NDCG-Loss2's delta."""
    positions = torch.arange(width, device=device)
    distance = (positions.unsqueeze(0) - positions.unsqueeze(1)).abs().float()
    safe = distance.clamp(min=1.0)
    deltas = (1.0 / torch.log2(1.0 + safe) - 1.0 / torch.log2(2.0 + safe)).abs()
    return torch.where(distance > 0, deltas, torch.zeros_like(deltas))


class NDCGLoss2Scheme(BaseWeightingScheme):
    """``delta_|i-j| * |G_i - G_j|``: the tight NDCG bound (NDCG-Loss2 in the paper)."""

    def forward(self, gain: torch.Tensor, discount: torch.Tensor, true_sorted: torch.Tensor) -> torch.Tensor:
        deltas = _rank_distance_deltas(gain.shape[1], gain.device)
        return deltas.unsqueeze(0) * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class LambdaRankScheme(BaseWeightingScheme):
    """``|1/D_i - 1/D_j| * |G_i - G_j|``: LambdaRank's |delta NDCG| weight, a coarse NDCG bound."""

    def forward(self, gain: torch.Tensor, discount: torch.Tensor, true_sorted: torch.Tensor) -> torch.Tensor:
        inverse = 1.0 / discount
        return (inverse.unsqueeze(2) - inverse.unsqueeze(1)).abs() * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class NDCGLoss2PPScheme(BaseWeightingScheme):
    """``mu * NDCG-Loss2 + LambdaRank`` weights (NDCG-Loss2++), the strongest scheme in the paper.

    Args:
        mu: weight of the NDCG-Loss2 term.
    """

    def __init__(self, mu: float = 10.0) -> None:
        super().__init__()
        self.mu = float(mu)
        self.ndcg_loss2 = NDCGLoss2Scheme()
        self.lambda_rank = LambdaRankScheme()

    def forward(self, gain: torch.Tensor, discount: torch.Tensor, true_sorted: torch.Tensor) -> torch.Tensor:
        return self.mu * self.ndcg_loss2(gain, discount, true_sorted) + self.lambda_rank(gain, discount, true_sorted)

    def get_config_dict(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "params": {"mu": self.mu}}


DEFAULT_WEIGHTING_SCHEME = NDCGLoss2PPScheme()


def lambda_loss(
    scores: torch.Tensor,
    grades: torch.Tensor,
    mask: torch.Tensor,
    weighting_scheme: BaseWeightingScheme,
    k: int | None = None,
    sigma: float = 1.0,
    eps: float = 1e-10,
    reduction_log: Literal["natural", "binary"] = "binary",
) -> torch.Tensor:
    """LambdaLoss over left-packed (rows, width) matrices; entries outside ``mask`` are ignored.

    Documents are ranked by score (ties in input order). For every pair of rank positions (i, j) of valid
    documents, both within the top ``k``, with grade_i > grade_j (all pairs for NDCGLoss1Scheme), the loss term is
    ``-w_ij * log(sigmoid(sigma * (s_i - s_j)))``; the loss is the mean term over all such pairs in the batch.
    ``maxDCG`` (the ideal DCG@k of each list, floored at ``eps``) normalizes the gains.

    The log-sigmoid is computed directly, so very wrong pairs keep a gradient (no probability floor).
    """
    rows, width = scores.shape
    if width == 0 or not bool(mask.any()):
        return zero_loss(scores.device) + scores.sum() * 0.0
    sort_key = scores.detach().masked_fill(~mask, float("-inf"))
    order = sort_key.argsort(dim=1, descending=True, stable=True)
    sorted_scores = scores.gather(1, order)
    valid = mask.gather(1, order)
    true_sorted = grades.gather(1, order).masked_fill(~valid, 0.0)
    ideal = grades.masked_fill(~mask, float("-inf")).sort(dim=1, descending=True).values
    ideal = ideal.masked_fill(~mask, 0.0)  # mask is left-packed, so the ideal order's padding is at the same places

    cutoff = width if k is None else min(k, width)
    ranks = torch.arange(1, width + 1, device=scores.device, dtype=torch.float)
    discount = torch.log2(1.0 + ranks).unsqueeze(0)
    max_dcg = ((torch.exp2(ideal) - 1.0) / discount)[:, :cutoff].sum(dim=1).clamp(min=eps)
    gain = torch.where(valid, (torch.exp2(true_sorted) - 1.0) / max_dcg.unsqueeze(1), torch.zeros_like(true_sorted))
    weights = weighting_scheme(gain, discount, true_sorted)

    pairs = valid.unsqueeze(2) & valid.unsqueeze(1)
    if not weighting_scheme.uses_all_pairs:
        pairs &= true_sorted.unsqueeze(2) > true_sorted.unsqueeze(1)
    in_top = ranks <= cutoff
    pairs &= (in_top.unsqueeze(1) & in_top.unsqueeze(0)).unsqueeze(0)
    count = int(pairs.sum())
    if count == 0:
        return scores.sum() * 0.0 + zero_loss(scores.device)

    differences = sorted_scores.unsqueeze(2) - sorted_scores.unsqueeze(1)
    log_probs = F.logsigmoid(sigma * differences) * weights
    if reduction_log == "binary":
        log_probs = log_probs / math.log(2.0)
    return -log_probs.masked_fill(~pairs, 0.0).sum() / count


class LambdaLoss(nn.Module):
    """LambdaLoss: a pairwise logistic loss whose pair weights make it a bound on an NDCG-based ranking loss.

    Each query's documents are sorted by predicted score; every pair (i, j) with grade_i > grade_j contributes
    ``-w_ij * log2(sigmoid(sigma * (s_i - s_j)))``, where the weighting scheme sets ``w_ij`` from the normalized
    gains and rank discounts. The loss is the mean over all such pairs in the batch.

    | inputs | labels |
    |---|---|
    | (query, [doc_1, ..., doc_n]) | [grade_1, ..., grade_n] |

    Lists may differ in length within a batch. Documents with a negative grade are ignored (not scored).

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        weighting_scheme: NoWeightingScheme (RankNet), NDCGLoss1Scheme, NDCGLoss2Scheme, LambdaRankScheme or
            NDCGLoss2PPScheme (default, mu=10); ``None`` means NoWeightingScheme.
        k: only pairs within the top ``k`` predicted positions count, and maxDCG is DCG@k; ``None``: all.
        sigma: slope of the pairwise sigmoid.
        eps: floor on maxDCG, so lists whose grades are all 0 do not divide by zero.
        reduction_log: "binary" (log2, the paper's) or "natural" (ln).
        activation_fn: applied to the logits first.
        mini_batch_size: at most this many (query, document) pairs per forward pass; ``None``: all at once.

    References:
        - Wang et al., The LambdaLoss Framework for Ranking Metric Optimization, CIKM 2018:
          https://research.google/pubs/the-lambdaloss-framework-for-ranking-metric-optimization/
        - Burges, From RankNet to LambdaRank to LambdaMART: An Overview, 2010.

    Example::

        loss = LambdaLoss(model, weighting_scheme=NDCGLoss2PPScheme(mu=10.0))
        value = loss(
            [["what is the capital of france"], [["paris is the capital", "berlin is big", "cats sleep"]]],
            [torch.tensor([2.0, 1.0, 0.0])],
        )
    """

    citation = """@inproceedings{wang2018lambdaloss,
  title={The LambdaLoss Framework for Ranking Metric Optimization},
  author={Wang, Xuanhui and Li, Cheng and Golbandi, Nadav and Bendersky, Michael and Najork, Marc},
  booktitle={Proceedings of the 27th ACM International Conference on Information and Knowledge Management},
  pages={1313--1322},
  year={2018}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        weighting_scheme: BaseWeightingScheme | None = DEFAULT_WEIGHTING_SCHEME,
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: Literal["natural", "binary"] = "binary",
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        require_single_output(model, name)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"{name}: k must be a positive integer or None; got {k!r}.")
        if reduction_log not in ("natural", "binary"):
            raise ValueError(f"{name}: reduction_log must be 'natural' or 'binary'; got {reduction_log!r}.")
        if eps <= 0:
            raise ValueError(f"{name}: eps must be positive; got {eps!r}.")
        self.model = model
        if weighting_scheme is DEFAULT_WEIGHTING_SCHEME:
            weighting_scheme = NDCGLoss2PPScheme()  # a fresh one: the shared default must never be mutated
        self.weighting_scheme = weighting_scheme if weighting_scheme is not None else NoWeightingScheme()
        self.k = k
        self.sigma = float(sigma)
        self.eps = float(eps)
        self.reduction_log = reduction_log
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = check_mini_batch_size(name, mini_batch_size)

    def forward(self, inputs: Sequence[Any], labels: list[torch.Tensor]) -> torch.Tensor:
        batch = score_lists(self.model, type(self).__name__, inputs, labels, self.activation_fn, self.mini_batch_size)
        return lambda_loss(
            batch.scores,
            batch.grades,
            batch.mask,
            self.weighting_scheme,
            k=self.k,
            sigma=self.sigma,
            eps=self.eps,
            reduction_log=self.reduction_log,
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "weighting_scheme": self.weighting_scheme.get_config_dict(),
            "k": self.k,
            "sigma": self.sigma,
            "eps": self.eps,
            "reduction_log": self.reduction_log,
            "activation_fn": activation_to_path(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }
