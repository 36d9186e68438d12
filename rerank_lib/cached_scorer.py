"""A scorer that remembers each pair's score: one model evaluated alone and inside a fusion is scored once."""

from __future__ import annotations

from typing import Any

import numpy as np

from rerank_lib.scorer import PairScorer, Scorer


class CachedScorer(PairScorer):
    """Wraps any :class:`~rerank_lib.scorer.Scorer`; pairs seen before are not rescored.

    Scores must not depend on the other pairs of a call (true of cross-encoders and bi-encoders, not of scores
    scaled per query such as :class:`~rerank_lib.retrieval.HybridScorer`'s).
    """

    def __init__(self, scorer: Scorer | Any) -> None:
        self.scorer = scorer
        self.num_labels = getattr(scorer, "num_labels", 1)
        self._scores: dict[tuple[str, str], float] = {}

    def __getattr__(self, name: str) -> Any:
        """Everything but ``predict`` is the wrapped scorer's (e.g. a bi-encoder scorer's ``encoder``)."""
        if name == "scorer":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.scorer, name)

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        missing = [pair for pair in dict.fromkeys(pairs) if pair not in self._scores]
        if missing:
            scores = self.scorer.predict(missing, batch_size=batch_size, show_progress_bar=show_progress_bar)
            self._scores.update(zip(missing, np.asarray(scores, dtype=np.float64).tolist(), strict=True))
        return np.asarray([self._scores[pair] for pair in pairs], dtype=np.float64)
