from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.retrieval import BM25Scorer, HybridScorer

PAIRS = [
    ("red apple pie", "a recipe for red apple pie"),
    ("red apple pie", "apple orchards in spring"),
    ("red apple pie", "the history of the steam engine"),
    ("steam engine", "the history of the steam engine"),
    ("steam engine", "a recipe for red apple pie"),
    ("steam engine", "locomotives and their boilers"),
]


@pytest.fixture
def encoder(tiny_bert_dir: Path) -> BiEncoder:
    return BiEncoder(tiny_bert_dir, max_length=32, device="cpu")


def _order(scores: np.ndarray, rows: slice) -> list[int]:
    return np.argsort(-scores[rows], kind="stable").tolist()


def test_each_query_is_scaled_to_the_unit_interval_on_its_own(encoder: BiEncoder) -> None:
    scores = HybridScorer(encoder, bm25_share=0.5).predict(PAIRS)
    assert scores.shape == (6,)
    for rows in (slice(0, 3), slice(3, 6)):
        assert scores[rows].max() <= 1.0 + 1e-6 and scores[rows].min() >= -1e-6


def test_the_share_moves_the_order_between_bm25_and_the_bi_encoder(encoder: BiEncoder) -> None:
    lexical = BM25Scorer().predict(PAIRS)
    semantic = BiEncoderScorer(encoder).predict(PAIRS)
    only_bm25 = HybridScorer(encoder, bm25_share=1.0).predict(PAIRS)
    only_cosine = HybridScorer(encoder, bm25_share=0.0).predict(PAIRS)
    for rows in (slice(0, 3), slice(3, 6)):
        assert _order(only_bm25, rows) == _order(lexical, rows)
        assert _order(only_cosine, rows) == _order(semantic, rows)
    half = HybridScorer(encoder, bm25_share=0.5).predict(PAIRS)
    assert np.allclose(half, (only_bm25 + only_cosine) / 2, atol=1e-6)


def test_a_query_whose_candidates_tie_gets_zeros_and_empty_input_is_empty(encoder: BiEncoder) -> None:
    scorer = HybridScorer(encoder, bm25_share=1.0)
    assert scorer.predict([("unrelated words", "a text"), ("unrelated words", "another text")]).tolist() == [0, 0]
    assert scorer.predict([]).shape == (0,)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_the_unit_interval_is_refused(encoder: BiEncoder, share: float) -> None:
    with pytest.raises(ValueError, match="bm25_share"):
        HybridScorer(encoder, bm25_share=share)
