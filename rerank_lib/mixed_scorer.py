"""A weighted mix of scorers: the one way scores of several scorers are combined into one score per pair.

Three rules use it: the score fusion of a trained cross-encoder with its zero-shot bi-encoder
(:class:`rerank_lib.fusion.FusedReranker`, raw scores mixed pair by pair), the hybrid first stage of BM25 and the
bi-encoder (:class:`rerank_lib.retrieval.HybridScorer`, each part min-max scaled within one query's candidates, as
BM25's scores have no fixed range) and the rerank package (:mod:`rerank_lib.package`: each part standardised with a
centre and spread measured on dev data, or, for a BM25 first stage, min-max scaled per query). What differs between
them is only the :class:`Normalization` of each part before the weighted sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np

from rerank_lib.scorer import PairScorer, Scorer, rows_by_query


class Normalization(StrEnum):
    """What happens to each part's scores before they are weighted and added."""

    NONE = "none"
    """Raw scores, pair by pair: a pair's mixed score does not depend on the other pairs, so scores compare across
    queries and single pairs can be scored."""

    QUERY_MIN_MAX = "query-min-max"
    """Min-max scaled to [0, 1] over one query's candidates in the call (0 for each where all tie): parts on
    different scales weigh as their shares say; the mixed scores rank one query's candidates only."""

    FIXED = "fixed"
    """Each part standardised with a centre and a spread measured beforehand (``(score - centre) / spread``): parts
    on different scales weigh as their shares say, and a pair's mixed score still depends on that pair only."""


def min_max_scaled(scores: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a query whose candidates all score the same gets 0 for each (no order to pass on)."""
    spread = scores.max() - scores.min()
    return (scores - scores.min()) / spread if spread > 0 else np.zeros_like(scores)


class MixedScorer(PairScorer):
    """``sum(weight_i * normalize(part_i))`` per pair, the parts' scores taken in float64.

    Args:
        parts: the scorers mixed (anything with ``predict(pairs, batch_size=, show_progress_bar=)``); each scores
            all pairs of a call once.
        weights: one non-negative weight per part.
        normalization: see :class:`Normalization`.
        scales: one ``(centre, spread)`` per part, for ``Normalization.FIXED`` only; spreads positive.
    """

    def __init__(
        self,
        parts: Sequence[Scorer | Any],
        weights: Sequence[float],
        normalization: Normalization | str = Normalization.NONE,
        scales: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        if not parts or len(parts) != len(weights):
            raise ValueError(f"MixedScorer needs one weight per part; got {len(parts)} parts, {len(weights)} weights.")
        if any(not np.isfinite(weight) or weight < 0 for weight in weights):
            raise ValueError(f"MixedScorer weights must be finite and non-negative; got {list(weights)}.")
        self.parts = list(parts)
        self.weights = [float(weight) for weight in weights]
        self.normalization = Normalization(normalization)
        if (self.normalization == Normalization.FIXED) != (scales is not None):
            raise ValueError("MixedScorer takes scales exactly when normalization is 'fixed' (one per part).")
        if scales is not None and (
            len(scales) != len(self.parts) or any(not np.isfinite(c) or not s > 0 for c, s in scales)
        ):
            raise ValueError(f"MixedScorer needs one (centre, positive spread) per part; got {list(scales)}.")
        self.scales = None if scales is None else [(float(c), float(s)) for c, s in scales]

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        mixed = np.zeros(len(pairs), dtype=np.float64)
        groups = list(rows_by_query(pairs).values()) if self.normalization == Normalization.QUERY_MIN_MAX else []
        for index, (part, weight) in enumerate(zip(self.parts, self.weights, strict=True)):
            scores = np.asarray(
                part.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar), dtype=np.float64
            )
            for rows in groups:
                scores[rows] = min_max_scaled(scores[rows])
            if self.scales is not None:
                centre, spread = self.scales[index]
                scores = (scores - centre) / spread
            mixed += weight * scores
        return mixed
