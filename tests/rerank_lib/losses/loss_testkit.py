"""Test helpers for the losses: a model with fixed logits, and plain reference computations to check losses against.

The references loop over lists one at a time in float64 with the textbook formulas, sharing no code with the
library: no padding, no masks, no vectorization, so they cannot share its bugs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run each test on one intra-op thread (autouse in every module that imports it).

    The test models are tiny, so threads gain nothing; on a CPU shared with other jobs, OpenMP threads waiting on
    each other made the loss tests ten times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TableScorer(nn.Module):
    """Stands in for a CrossEncoder: each (a, b) pair's logit is one entry of a learnable table.

    Losses call ``score_pairs`` or ``tokenize`` + ``forward`` on it exactly as on a CrossEncoder, so their value and
    the gradient on ``self.logits`` can be checked against hand computations with known logits.
    """

    num_labels = 1
    max_length = 128

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        super().__init__()
        self.keys = list(table)
        self.position = {key: index for index, key in enumerate(self.keys)}
        self.logits = nn.Parameter(torch.tensor([table[key] for key in self.keys], dtype=torch.float))
        self.forward_sizes: list[int] = []

    @classmethod
    def random(cls, anchors: Sequence[str], docs: Sequence[str], seed: int = 0, spread: float = 3.0) -> TableScorer:
        """A logit for every (anchor, doc) combination, drawn from a seeded normal distribution."""
        generator = torch.Generator().manual_seed(seed)
        keys = [(a, d) for a in dict.fromkeys(anchors) for d in dict.fromkeys(docs)]
        values = (torch.randn(len(keys), generator=generator) * spread).tolist()
        return cls(dict(zip(keys, values, strict=True)))

    @property
    def device(self) -> torch.device:
        return self.logits.device

    def value(self, a: str, b: str) -> float:
        return float(self.logits.detach()[self.position[(a, b)]])

    def tokenize(self, pairs: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        return {"pair_ids": torch.tensor([self.position[(a, b)] for a, b in pairs], dtype=torch.long)}

    def forward(self, pair_ids: torch.Tensor) -> torch.Tensor:
        self.forward_sizes.append(len(pair_ids))
        return self.logits[pair_ids].unsqueeze(1)

    def score_pairs(self, pairs: Sequence[Sequence[str]]) -> torch.Tensor:
        return self(**self.tokenize(pairs))

    def grad_of(self, a: str, b: str) -> float:
        grad = self.logits.grad
        return 0.0 if grad is None else float(grad[self.position[(a, b)]])


def _kept(scores: Sequence[float], grades: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(s, g) for s, g in zip(scores, grades, strict=True) if g >= 0]
    return [s for s, _ in pairs], [g for _, g in pairs]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def reference_listnet(lists: Sequence[tuple[Sequence[float], Sequence[float]]]) -> float:
    """Mean over non-empty lists of -sum_i softmax(grades)_i * log softmax(scores)_i."""
    losses = []
    for scores, grades in lists:
        scores, grades = _kept(scores, grades)
        if not scores:
            continue
        grade_norm, score_norm = _logsumexp(grades), _logsumexp(scores)
        losses.append(-sum(math.exp(g - grade_norm) * (s - score_norm) for s, g in zip(scores, grades, strict=True)))
    return sum(losses) / len(losses)


def reference_plistmle(
    lists: Sequence[tuple[Sequence[float], Sequence[float]]], weighted: bool, respect_input_order: bool
) -> float:
    """Mean over non-empty lists of -sum_r w_r (s_r - log sum_{j >= r} exp s_j), w_r ~ 2^(n - r + 1) - 1 (r from 1)."""
    losses = []
    for scores, grades in lists:
        scores, grades = _kept(scores, grades)
        if not scores:
            continue
        if not respect_input_order:  # stable: equal grades keep their input order
            order = sorted(range(len(scores)), key=lambda i: -grades[i])
            scores = [scores[i] for i in order]
        n = len(scores)
        weights = [2.0 ** (n - r + 1) - 1 for r in range(1, n + 1)] if weighted else [1.0] * n
        total = sum(weights) if weighted else 1.0
        likelihood = sum(
            weights[r] / total * (scores[r] - _logsumexp(scores[r:])) for r in range(n)
        )  # weights normalized to sum 1 for p-ListMLE; plain sum for ListMLE
        losses.append(-likelihood)
    return sum(losses) / len(losses)


def reference_lambda(
    lists: Sequence[tuple[Sequence[float], Sequence[float]]],
    scheme: str,
    k: int | None = None,
    sigma: float = 1.0,
    mu: float = 10.0,
    log_base: float = 2.0,
) -> float:
    """Pooled mean over counted pairs of -w_ij log_b sigmoid(sigma (s_i - s_j)), positions in predicted order."""
    total, count = 0.0, 0
    for scores, grades in lists:
        scores, grades = _kept(scores, grades)
        n = len(scores)
        if n == 0:
            continue
        order = sorted(range(n), key=lambda i: -scores[i])  # stable: ties keep input order
        s = [scores[i] for i in order]
        y = [grades[i] for i in order]
        cutoff = n if k is None else min(k, n)
        ideal = sorted(grades, reverse=True)
        max_dcg = max(sum((2 ** ideal[r] - 1) / math.log2(r + 2) for r in range(cutoff)), 1e-10)
        gain = [(2**g - 1) / max_dcg for g in y]
        discount = [math.log2(r + 2) for r in range(n)]  # rank r + 1 (1-based)

        def delta(distance: int) -> float:
            return abs(1 / math.log2(1 + distance) - 1 / math.log2(2 + distance)) if distance else 0.0

        for i in range(cutoff):
            for j in range(cutoff):
                if scheme != "ndcg1" and not y[i] > y[j]:
                    continue
                if scheme == "none":
                    weight = 1.0
                elif scheme == "ndcg1":
                    weight = gain[i] / discount[i]
                elif scheme == "ndcg2":
                    weight = delta(abs(i - j)) * abs(gain[i] - gain[j])
                elif scheme == "lambdarank":
                    weight = abs(1 / discount[i] - 1 / discount[j]) * abs(gain[i] - gain[j])
                elif scheme == "ndcg2pp":
                    ndcg2 = delta(abs(i - j)) * abs(gain[i] - gain[j])
                    weight = mu * ndcg2 + abs(1 / discount[i] - 1 / discount[j]) * abs(gain[i] - gain[j])
                else:
                    raise ValueError(scheme)
                log_sigmoid = -math.log1p(math.exp(-sigma * (s[i] - s[j])))
                total += -weight * log_sigmoid / math.log(log_base)
                count += 1
    return total / count
