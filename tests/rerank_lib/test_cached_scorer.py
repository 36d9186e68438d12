"""CachedScorer: a model evaluated alone and inside a fusion scores each pair once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rerank_lib import CrossEncoder
from rerank_lib.cached_scorer import CachedScorer

PAIRS = [
    ("where does the cat sleep", "the cat sleeps in the car"),
    ("where does the cat sleep", "music and song"),
    ("what is the capital of france", "paris is the capital of france"),
    ("what is the capital of france", "the woman eats food"),
    ("what is the capital of france", "berlin is a city"),
]


def test_cached_scorer_scores_each_distinct_pair_once(tiny_model: CrossEncoder) -> None:
    calls: list[int] = []

    class Counting:
        def predict(self, pairs: list[tuple[str, str]], **kwargs: object) -> np.ndarray:
            calls.append(len(pairs))
            return tiny_model.predict(pairs)

    cached = CachedScorer(Counting())
    first = cached.predict(PAIRS + PAIRS[:2])
    second = cached.predict(PAIRS[1:4])
    assert calls == [len(PAIRS)]
    np.testing.assert_allclose(first[: len(PAIRS)], tiny_model.predict(PAIRS), atol=1e-6)
    np.testing.assert_allclose(second, first[1:4])


def test_other_attributes_are_the_wrapped_scorers(tiny_bert_dir: Path) -> None:
    from rerank_lib.bi_encoder import BiEncoderScorer

    scorer = BiEncoderScorer(str(tiny_bert_dir))
    assert CachedScorer(scorer).encoder is scorer.encoder  # a cached bi-encoder can still be fingerprinted
