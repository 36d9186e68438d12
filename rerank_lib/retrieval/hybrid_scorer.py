"""BM25 and a bi-encoder mixed into one score per pair: a teacher (or baseline) stronger than either part.

The two first stages fail differently: BM25 finds rare shared terms (SciFact claims and the abstracts that support
them), the bi-encoder finds topical matches without shared words (web questions and passages). Each score is
min-max scaled over one query's candidates and the two are mixed, ``bm25_share`` of BM25; on the recipe's dev
splits the mix beats both parts on SciFact and on WikiQA passages (docs/recipe.md). The scores rank the candidates
of one query; they do not compare across queries.
"""

from __future__ import annotations

import os

from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.mixed_scorer import MixedScorer, Normalization
from rerank_lib.retrieval.bm25_scorer import BM25Scorer

DEFAULT_BM25_SHARE = 0.25  # BM25's weight in the mix when none is given


class HybridScorer(MixedScorer):
    """``bm25_share * BM25 + (1 - bm25_share) * cosine``, each min-max scaled to [0, 1] within one query's pairs.

    BM25's document statistics come from the distinct documents of each ``predict`` call (as in
    :class:`BM25Scorer`): pass every pair of a dataset in one call.
    """

    default_batch_size = 64

    def __init__(
        self, encoder: BiEncoder | str | os.PathLike, bm25_share: float = DEFAULT_BM25_SHARE, max_length: int = 256
    ) -> None:
        if not 0.0 <= bm25_share <= 1.0:
            raise ValueError(f"bm25_share must lie in [0, 1] (the share of BM25 in the mix); got {bm25_share}.")
        self.bm25_share = bm25_share
        parts = [BM25Scorer(), BiEncoderScorer(encoder, max_length=max_length)]
        super().__init__(parts, [bm25_share, 1 - bm25_share], Normalization.QUERY_MIN_MAX)

    @property
    def bm25(self) -> BM25Scorer:
        return self.parts[0]

    @property
    def bi_encoder(self) -> BiEncoderScorer:
        return self.parts[1]
