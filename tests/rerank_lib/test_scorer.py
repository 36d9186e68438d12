"""The Scorer protocol: every scorer of the library declares it, and each takes the same input the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rerank_lib import BiEncoderScorer, CachedScorer, CrossEncoder, FusedReranker, MixedScorer, Scorer
from rerank_lib.bi_encoder import BiEncoder
from rerank_lib.retrieval import BM25Scorer, HybridScorer

PAIRS = [("where does the cat sleep", "the cat sleeps on the mat"), ("where does the cat sleep", "a red car")]


@pytest.fixture
def scorers(tiny_model: CrossEncoder, tiny_bert_dir: Path) -> dict[str, Scorer]:
    encoder = BiEncoder(tiny_bert_dir, max_length=32, device="cpu")
    return {
        "cross-encoder": tiny_model,
        "bi-encoder": BiEncoderScorer(encoder),
        "bm25": BM25Scorer(),
        "hybrid": HybridScorer(encoder),
        "fused": FusedReranker(tiny_model, encoder, prior_share=0.5),
        "cached": CachedScorer(BM25Scorer()),
        "mixed": MixedScorer([BM25Scorer(), tiny_model], [1.0, 1.0]),
    }


def test_every_scorer_is_a_scorer_and_scores_one_float_per_pair(scorers: dict[str, Scorer]) -> None:
    for name, scorer in scorers.items():
        assert isinstance(scorer, Scorer), name
        scores = np.asarray(scorer.predict(PAIRS, batch_size=2, show_progress_bar=False))
        assert scores.shape == (2,) and np.isfinite(scores).all(), name
        lists = np.asarray(scorer.predict([list(pair) for pair in PAIRS]))  # lists and tuples alike
        np.testing.assert_allclose(lists, scores, atol=1e-6, err_msg=name)


def test_empty_input_gives_no_scores(scorers: dict[str, Scorer]) -> None:
    for name, scorer in scorers.items():
        if name != "cross-encoder":  # CrossEncoder.predict([]) keeps the reference toolkit's behaviour
            assert scorer.predict([]).shape == (0,), name


def test_bm25_scores_are_todays() -> None:
    """BM25Scorer's scores on these pairs, as the library's own BM25 index gave them before bm25s replaced it."""
    pairs = [
        ("red apple pie", "a recipe for red apple pie"),
        ("red apple pie", "apple orchards in spring"),
        ("red apple pie", "the history of the steam engine"),
        ("steam engine", "the history of the steam engine"),
        ("steam engine", "a recipe for red apple pie"),
        ("steam engine", "locomotives and their boilers"),
        ("where is paris", "paris is the capital of france"),
        ("where is paris", "berlin is a city in germany"),
        ("where is paris", "the cat sleeps"),
        ("who reads", "a woman reads a book"),
        ("who reads", "the dog eats food"),
    ]
    first = [2.5413942337036133, 0.7243499755859375, 0.0, 1.9825209379196167, 0.0, 0.0]
    expected = first + [0.9912604689598083, 0.0, 0.0, 0.9912604689598083, 0.0]
    np.testing.assert_allclose(BM25Scorer().predict(pairs), expected, rtol=1e-6)
