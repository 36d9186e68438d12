"""BM25 as a :class:`~rerank_lib.scorer.Scorer`, so the lexical baseline is scored by the same evaluators, on the
same candidates, as the cross-encoder and the bi-encoder."""

from __future__ import annotations

import numpy as np

from rerank_lib.retrieval.bm25 import BM25
from rerank_lib.scorer import PairScorer, rows_by_query


class BM25Scorer(PairScorer):
    """Okapi BM25 with document statistics over the distinct passages of each ``predict`` call.

    For a candidate-list benchmark such as WikiQA (no shared corpus), the pool of all candidates passed in is the
    collection BM25's inverse document frequencies come from: call ``predict`` once with every pair of the set.
    """

    def __init__(self, k1: float = 0.9, b: float = 0.4) -> None:
        self.k1 = k1
        self.b = b

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        documents = list(dict.fromkeys(document for _, document in pairs))
        index = BM25(k1=self.k1, b=self.b).fit({str(i): text for i, text in enumerate(documents)})
        position = {text: i for i, text in enumerate(documents)}
        scores = np.empty(len(pairs), dtype=np.float32)
        for query, rows in rows_by_query(pairs).items():
            all_scores = index.get_scores(query)
            scores[rows] = all_scores[[position[pairs[row][1]] for row in rows]]
        return scores
