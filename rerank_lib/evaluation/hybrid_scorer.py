"""BM25 and a bi-encoder fused into one score per pair: a teacher (or baseline) stronger than either part.

The two first stages fail differently: BM25 finds rare shared terms (SciFact claims and the abstracts that support
them), the bi-encoder finds topical matches without shared words (web questions and passages). Each score is
min-max scaled over one query's candidates and the two are mixed, ``bm25_share`` of BM25; on the recipe's dev
splits the mix beats both parts on SciFact and on WikiQA passages (docs/recipe.md). The scores rank the candidates
of one query; they do not compare across queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.data.embeddings import BiEncoder
from rerank_lib.evaluation.bi_encoder_scorer import BiEncoderScorer
from rerank_lib.evaluation.bm25_scorer import BM25Scorer, rows_by_query

DEFAULT_BM25_SHARE = 0.25  # the mix measured on the recipe's dev splits (docs/recipe.md row 0f)


class HybridScorer:
    """``bm25_share * BM25 + (1 - bm25_share) * cosine``, each min-max scaled to [0, 1] within one query's pairs.

    BM25's document statistics come from the distinct documents of each ``predict`` call (as in
    :class:`BM25Scorer`): pass every pair of a dataset in one call.
    """

    num_labels = 1

    def __init__(self, encoder: BiEncoder | str, bm25_share: float = DEFAULT_BM25_SHARE, max_length: int = 256) -> None:
        if not 0.0 <= bm25_share <= 1.0:
            raise ValueError(f"bm25_share must lie in [0, 1] (the share of BM25 in the mix); got {bm25_share}.")
        self.bm25_share = bm25_share
        self.bi_encoder = BiEncoderScorer(encoder, max_length=max_length)
        self.bm25 = BM25Scorer()

    def predict(
        self,
        sentences: Sequence[Sequence[str]],
        batch_size: int = 64,
        show_progress_bar: bool | None = None,
        **_: Any,
    ) -> np.ndarray:
        pairs = [(str(query), str(document)) for query, document in sentences]
        if not pairs:
            return np.empty(0, dtype=np.float32)
        lexical = self.bm25.predict(pairs).astype(np.float64)
        semantic = self.bi_encoder.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar)
        semantic = semantic.astype(np.float64)
        fused = np.empty(len(pairs), dtype=np.float64)
        for rows in rows_by_query(pairs).values():
            fused[rows] = fuse(lexical[rows], semantic[rows], self.bm25_share)
        return fused.astype(np.float32)


def fuse(lexical: np.ndarray, semantic: np.ndarray, bm25_share: float) -> np.ndarray:
    """One query's BM25 and cosine scores, each min-max scaled, mixed with ``bm25_share`` of BM25."""
    return bm25_share * min_max_scaled(lexical) + (1 - bm25_share) * min_max_scaled(semantic)


def min_max_scaled(scores: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a query whose candidates all score the same gets 0 for each (no order to pass on)."""
    spread = scores.max() - scores.min()
    return (scores - scores.min()) / spread if spread > 0 else np.zeros_like(scores)
