from __future__ import annotations

from pathlib import Path

import numpy as np

from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator


def test_scores_are_cosine_similarities_in_input_order(tiny_bert_dir: Path) -> None:
    encoder = BiEncoder(tiny_bert_dir, max_length=32, device="cpu")
    scorer = BiEncoderScorer(encoder)
    pairs = [("the cat sleeps", "a dog runs"), ("paris", "paris"), ("the cat sleeps", "the cat sleeps")]
    scores = scorer.predict(pairs)
    vectors = encoder.encode(["the cat sleeps", "a dog runs"])
    assert scores.shape == (3,)
    assert np.isclose(scores[0], float(vectors[0] @ vectors[1]), atol=1e-5)
    assert np.allclose(scores[1:], 1.0, atol=1e-5)
    assert scorer.predict([]).shape == (0,)


def test_evaluators_score_the_baseline_like_a_model(tiny_bert_dir: Path) -> None:
    scorer = BiEncoderScorer(BiEncoder(tiny_bert_dir, max_length=32, device="cpu"))
    samples = [{"query": "the cat sleeps", "positive": ["the cat sleeps"], "negative": ["a big red car", "a song"]}]
    results = CrossEncoderRerankingEvaluator(samples, name="toy")(scorer)
    assert results["toy_mrr@10"] == 1.0  # the identical text has cosine 1 and ranks first
