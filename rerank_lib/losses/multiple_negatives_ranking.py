"""Multiple negatives ranking loss: softmax cross-entropy of the positive against in-batch and hard negatives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rerank_lib.activation import activation_to_path
from rerank_lib.losses._inputs import check_column_count, check_same_length, no_labels, text_column
from rerank_lib.losses._scoring import loss_dtype, require_single_output, score_pairs
from rerank_lib.model import CrossEncoder


def sample_in_batch_negatives(
    anchors: Sequence[str],
    candidate_columns: Sequence[Sequence[str]],
    num_negatives: int | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick in-batch negatives for each anchor; shared by the cached and uncached losses so both see the same ones.

    The candidates are the texts of ``candidate_columns`` (positive first, then hard negatives), flattened column
    by column: candidate ``c`` is row ``c % batch`` of column ``c // batch``. A candidate is eligible for anchor
    ``i`` unless it belongs to a row whose anchor text equals anchor ``i`` (its own row included), or its text is
    the positive of such a row: either would be a false negative.

    Args:
        num_negatives: negatives per anchor, drawn uniformly without replacement; ``None`` takes every eligible one.
            An anchor with fewer eligible candidates gets all of them.
        generator: random source for the draw (default: torch's global CPU generator, so the trainer's seed
            makes runs reproducible).

    Returns:
        A (batch, k) long tensor of candidate indices, ``-1`` where an anchor has fewer than ``k`` negatives.
    """
    batch = len(anchors)
    flat = [text for column in candidate_columns for text in column]
    text_ids: dict[str, int] = {}
    flat_ids = torch.tensor([text_ids.setdefault(text, len(text_ids)) for text in flat], dtype=torch.long)
    positive_ids = flat_ids[:batch]
    anchor_ids: dict[str, int] = {}
    anchor_keys = torch.tensor([anchor_ids.setdefault(text, len(anchor_ids)) for text in anchors], dtype=torch.long)

    # positive_for[g, t]: text t is the positive of some row whose anchor is g.
    positive_for = torch.zeros((len(anchor_ids), len(text_ids)), dtype=torch.bool)
    positive_for[anchor_keys, positive_ids] = True
    eligible = ~positive_for[anchor_keys][:, flat_ids]  # (batch, candidates)
    same_anchor = anchor_keys.unsqueeze(0) == anchor_keys.unsqueeze(1)  # (batch, batch), diagonal included
    eligible &= ~same_anchor.repeat(1, len(candidate_columns))
    available = eligible.sum(dim=1)
    limit = int(available.max()) if batch else 0
    count = limit if num_negatives is None else min(num_negatives, limit)
    if count == 0:
        return torch.empty((batch, 0), dtype=torch.long)

    if num_negatives is None:
        keys = torch.arange(eligible.shape[1], dtype=torch.float).expand_as(eligible)
    else:
        keys = torch.rand(eligible.shape, generator=generator)
    keys = keys.masked_fill(~eligible, float("inf"))
    chosen = keys.argsort(dim=1, stable=True)[:, :count]
    taken = torch.arange(count).unsqueeze(0) < available.unsqueeze(1)
    return torch.where(taken, chosen, torch.full_like(chosen, -1))


@dataclass
class ScoringPlan:
    """The pairs to score and where each score goes in the (batch, 1 + negatives) score matrix."""

    pairs: list[tuple[str, str]]
    index: torch.Tensor  # (batch, 1 + k + hard): position in ``pairs`` or -1 for a missing negative


class MultipleNegativesRankingLoss(nn.Module):
    """For each (anchor, positive) row, cross-entropy with the positive as the target among sampled negatives.

    Each anchor is scored jointly with its positive, ``num_negatives`` documents sampled from the other rows
    (their positives and hard negatives) and its own hard negatives; the scores ``scale * activation_fn(logit)`` go
    through softmax cross-entropy with the positive (index 0) as the target. Only positive pairs are needed.

    | inputs | labels |
    |---|---|
    | (anchor, positive) | none |
    | (anchor, positive, negative_1, ..., negative_n) | none |

    In-batch candidates that would be false negatives are never sampled: documents of rows with the same anchor
    text (such a row's positive is a positive here too), and any document whose text is a positive of this anchor.
    Anchors with fewer eligible candidates than ``num_negatives`` use all of them (missing slots are masked out,
    not filled with duplicates).

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        num_negatives: in-batch negatives per anchor, sampled without replacement; ``None`` uses all of them.
        scale: multiplies the activated scores; the softmax temperature is ``1 / scale``.
        activation_fn: bounds the logits before scaling (Sigmoid keeps scaled scores in (0, scale)).

    References:
        - Henderson et al., Efficient Natural Language Response Suggestion for Smart Reply, 2017:
          https://arxiv.org/abs/1705.00652
        - CachedMultipleNegativesRankingLoss gives the same loss and gradients with bounded memory.

    Example::

        loss = MultipleNegativesRankingLoss(model, num_negatives=4)
        value = loss([["what is the capital of france", "who wrote hamlet"], ["paris", "shakespeare"]], None)
    """

    citation = """@misc{henderson2017efficient,
  title={Efficient Natural Language Response Suggestion for Smart Reply},
  author={Matthew Henderson and Rami Al-Rfou and Brian Strope and Yun-hsuan Sung and Laszlo Lukacs and Ruiqi Guo
    and Sanjiv Kumar and Balint Miklos and Ray Kurzweil},
  year={2017},
  eprint={1705.00652},
  archivePrefix={arXiv},
  primaryClass={cs.CL}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = None,
    ) -> None:
        super().__init__()
        require_single_output(model, type(self).__name__)
        if num_negatives is not None and (
            isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 0
        ):
            raise ValueError(f"num_negatives must be a non-negative integer or None; got {num_negatives!r}.")
        self.model = model
        self.num_negatives = num_negatives
        self.scale = float(scale)
        self.activation_fn = activation_fn if activation_fn is not None else nn.Sigmoid()

    def plan(self, inputs: Sequence[Sequence[str]], labels: Any = None) -> ScoringPlan:
        """Validate the columns, sample the in-batch negatives and list the pairs to score."""
        name = type(self).__name__
        no_labels(name, labels)
        check_column_count(name, inputs, "(anchor, positive[, negative_1, ..., negative_n])", 2, None)
        anchors = text_column(name, inputs, 0, "anchor")
        candidates = [text_column(name, inputs, 1, "positive")]
        candidates += [text_column(name, inputs, i, f"negative_{i - 1}") for i in range(2, len(inputs))]
        batch = check_same_length(name, [anchors, *candidates])
        flat = [text for column in candidates for text in column]
        sampled = sample_in_batch_negatives(anchors, candidates, self.num_negatives)

        pairs = [(anchors[row], candidates[0][row]) for row in range(batch)]
        index_columns = [torch.arange(batch)]
        sampled_index = torch.full_like(sampled, -1)
        for row, chosen in enumerate(sampled.tolist()):
            for slot, candidate in enumerate(chosen):
                if candidate >= 0:
                    sampled_index[row, slot] = len(pairs)
                    pairs.append((anchors[row], flat[candidate]))
        index_columns += list(sampled_index.T)
        for column in candidates[1:]:
            index_columns.append(torch.arange(len(pairs), len(pairs) + batch))
            pairs.extend(zip(anchors, column, strict=True))
        return ScoringPlan(pairs=pairs, index=torch.stack(index_columns, dim=1))

    def loss_from_logits(self, logits: torch.Tensor, plan: ScoringPlan) -> torch.Tensor:
        """Cross-entropy over each row's scores, the positive in column 0; missing negatives are masked out."""
        scores = self.activation_fn(loss_dtype(logits)) * self.scale
        index = plan.index.to(scores.device)
        matrix = scores[index.clamp(min=0)]
        matrix = matrix.masked_fill(index < 0, float("-inf"))
        target = torch.zeros(matrix.shape[0], dtype=torch.long, device=scores.device)
        return F.cross_entropy(matrix, target)

    def forward(self, inputs: Sequence[Sequence[str]], labels: Any = None) -> torch.Tensor:
        plan = self.plan(inputs, labels)
        return self.loss_from_logits(score_pairs(self.model, plan.pairs), plan)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "num_negatives": self.num_negatives,
            "scale": self.scale,
            "activation_fn": activation_to_path(self.activation_fn),
        }
