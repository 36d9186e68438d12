"""BM25 behind the ``predict(pairs)`` interface, so the lexical baseline is scored by the same evaluators, on the
same candidates, as the cross-encoder and the bi-encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.evaluation.bm25 import BM25


class BM25Scorer:
    """Okapi BM25 with document statistics over the distinct passages of each ``predict`` call.

    For a candidate-list benchmark such as WikiQA (no shared corpus), the pool of all candidates passed in is the
    collection BM25's inverse document frequencies come from: call ``predict`` once with every pair of the set.
    """

    num_labels = 1

    def __init__(self, k1: float = 0.9, b: float = 0.4) -> None:
        self.k1 = k1
        self.b = b

    def predict(self, sentences: Sequence[Sequence[str]], **_: Any) -> np.ndarray:
        pairs = [(str(query), str(document)) for query, document in sentences]
        if not pairs:
            return np.empty(0, dtype=np.float32)
        documents = list(dict.fromkeys(document for _, document in pairs))
        index = BM25(k1=self.k1, b=self.b).fit({str(i): text for i, text in enumerate(documents)})
        position = {text: i for i, text in enumerate(documents)}
        scores = np.empty(len(pairs), dtype=np.float32)
        for query, rows in rows_by_query(pairs).items():
            all_scores = index.get_scores(query)
            scores[rows] = all_scores[[position[pairs[row][1]] for row in rows]]
        return scores


def rows_by_query(pairs: Sequence[tuple[str, str]]) -> dict[str, list[int]]:
    """The row numbers of each query's pairs, queries in first-seen order, for scores computed one query at a time."""
    rows: dict[str, list[int]] = {}
    for row, (query, _) in enumerate(pairs):
        rows.setdefault(query, []).append(row)
    return rows
