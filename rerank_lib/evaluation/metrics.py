"""Ranking metrics over one ranked list of relevance grades (best first)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def reciprocal_rank_at_k(ranked_relevance: Sequence[float], k: int) -> float:
    """1 / rank of the first relevant item within the top k, else 0."""
    for rank, grade in enumerate(ranked_relevance[:k], start=1):
        if grade > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked_relevance: Sequence[float], k: int, all_relevance: Sequence[float] | None = None) -> float:
    """NDCG@k with linear gains (grade / log2(rank + 1)); ideal order from ``all_relevance``.

    ``all_relevance`` includes relevant items the ranking missed, so they lower the score.
    """
    ideal_source = ranked_relevance if all_relevance is None else all_relevance
    gains = np.asarray(ranked_relevance[:k], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, len(gains) + 2))
    dcg = float((gains * discounts).sum())
    ideal = np.sort(np.asarray(ideal_source, dtype=float))[::-1][:k]
    idcg = float((ideal * (1.0 / np.log2(np.arange(2, len(ideal) + 2)))).sum())
    return dcg / idcg if idcg > 0 else 0.0


def average_precision(ranked_relevance: Sequence[float], num_relevant: int | None = None) -> float:
    """Mean of precision at each relevant position; relevant items never ranked count as misses."""
    hits = 0
    total = 0.0
    for rank, grade in enumerate(ranked_relevance, start=1):
        if grade > 0:
            hits += 1
            total += hits / rank
    denominator = num_relevant if num_relevant is not None else hits
    return total / denominator if denominator else 0.0
