from __future__ import annotations

import numpy as np

from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from rerank_lib.retrieval import BM25, BM25Scorer


def test_scores_equal_bm25_over_the_pool_of_distinct_passages() -> None:
    pairs = [
        ("capital of france", "paris is the capital of france"),
        ("capital of france", "the river runs through the city"),
        ("river city", "the river runs through the city"),
        ("river city", "paris is the capital of france"),
    ]
    scores = BM25Scorer().predict(pairs)
    index = BM25().fit({"0": pairs[0][1], "1": pairs[1][1]})  # each distinct passage once, in first-seen order
    assert scores.shape == (4,) and scores.dtype == np.float32
    assert np.allclose(scores[:2], index.get_scores("capital of france"))
    assert np.allclose(scores[2:], index.get_scores("river city")[::-1])
    assert scores[0] > scores[1] == 0 and scores[2] > scores[3] == 0
    assert BM25Scorer().predict([]).shape == (0,)


def test_evaluators_score_the_lexical_baseline_like_a_model() -> None:
    samples = [
        {"query": "who wrote the song", "positive": ["he wrote the song in 1990"], "negative": ["a red car", "dogs"]},
        {"query": "big river", "positive": ["the big river"], "negative": ["a small cat", "the big red bus"]},
    ]
    results = CrossEncoderRerankingEvaluator(samples, name="toy")(BM25Scorer())
    assert results["toy_mrr@10"] == 1.0 and results["toy_map"] == 1.0
