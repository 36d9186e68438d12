"""MixedScorer: weighted parts with a named normalisation; the hybrid and fused scorers are two settings of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder, FusedReranker
from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.mixed_scorer import MixedScorer, Normalization, min_max_scaled
from rerank_lib.retrieval import BM25Scorer, HybridScorer
from rerank_lib.scorer import as_pairs

PAIRS = [
    ("red apple pie", "a recipe for red apple pie"),
    ("red apple pie", "apple orchards in spring"),
    ("red apple pie", "the history of the steam engine"),
    ("steam engine", "the history of the steam engine"),
    ("steam engine", "locomotives and their boilers"),
]


class Fixed:
    """A scorer returning given scores, recording the batch sizes it was asked for."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.batch_sizes: list[int] = []

    def predict(self, pairs, batch_size: int = 32, show_progress_bar: bool | None = None) -> np.ndarray:
        self.batch_sizes.append(batch_size)
        return np.asarray(self.scores[: len(pairs)], dtype=np.float32)


def test_no_normalisation_mixes_raw_scores_pair_by_pair() -> None:
    first, second = Fixed([1.0, 2.0, 3.0, 4.0, 5.0]), Fixed([10.0, 0.0, 10.0, 0.0, 10.0])
    mixed = MixedScorer([first, second], [0.5, 0.25]).predict(PAIRS, batch_size=7)
    np.testing.assert_allclose(mixed, [3.0, 1.0, 4.0, 2.0, 5.0])
    assert first.batch_sizes == second.batch_sizes == [7] and mixed.dtype == np.float32


def test_query_min_max_scales_each_part_within_each_query() -> None:
    lexical, semantic = Fixed([4.0, 2.0, 0.0, 7.0, 7.0]), Fixed([0.1, 0.3, 0.2, 0.9, 0.5])
    mixed = MixedScorer([lexical, semantic], [0.25, 0.75], Normalization.QUERY_MIN_MAX).predict(PAIRS)
    expected_first = 0.25 * np.array([1.0, 0.5, 0.0]) + 0.75 * np.array([0.0, 1.0, 0.5])
    expected_second = 0.25 * np.array([0.0, 0.0]) + 0.75 * np.array([1.0, 0.0])  # tied BM25 scores give 0 each
    np.testing.assert_allclose(mixed, np.concatenate([expected_first, expected_second]), atol=1e-7)
    assert min_max_scaled(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]


def test_fixed_scales_standardise_each_part_pair_by_pair() -> None:
    lexical, semantic = Fixed([4.0, 2.0, 0.0, 7.0, 7.0]), Fixed([0.1, 0.3, 0.2, 0.9, 0.5])
    mixer = MixedScorer([lexical, semantic], [0.25, 0.75], Normalization.FIXED, [(2.0, 4.0), (0.5, 0.2)])
    expected = (
        0.25 * (np.array([4.0, 2.0, 0.0, 7.0, 7.0]) - 2.0) / 4.0
        + 0.75 * (np.array([0.1, 0.3, 0.2, 0.9, 0.5]) - 0.5) / 0.2
    )
    np.testing.assert_allclose(mixer.predict(PAIRS), expected, atol=1e-6)
    # Unlike the per-query scale, a pair alone scores as it does among the others.
    np.testing.assert_allclose(mixer.predict(PAIRS[:1]), expected[:1], atol=1e-6)
    with pytest.raises(ValueError, match="scales exactly when normalization is 'fixed'"):
        MixedScorer([lexical], [1.0], Normalization.FIXED)
    with pytest.raises(ValueError, match="scales exactly when"):
        MixedScorer([lexical], [1.0], Normalization.NONE, [(0.0, 1.0)])
    with pytest.raises(ValueError, match="positive spread"):
        MixedScorer([lexical], [1.0], Normalization.FIXED, [(0.0, 0.0)])


@pytest.mark.parametrize(
    ("parts", "weights", "message"),
    [
        ([], [], "one weight per part"),
        ([Fixed([1.0])], [0.5, 0.5], "one weight per part"),
        ([Fixed([1.0])], [-1], "non-negative"),
    ],
)
def test_bad_weights_are_refused(parts: list, weights: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MixedScorer(parts, weights)


def test_an_unknown_normalisation_is_refused() -> None:
    with pytest.raises(ValueError, match="per-pair"):
        MixedScorer([Fixed([1.0])], [1.0], "per-pair")


def test_hybrid_scorer_is_the_query_min_max_mix_of_bm25_and_the_bi_encoder(tiny_bert_dir: Path) -> None:
    encoder = BiEncoder(tiny_bert_dir, max_length=32, device="cpu")
    lexical = BM25Scorer().predict(PAIRS).astype(np.float64)
    cosine = BiEncoderScorer(encoder).predict(PAIRS).astype(np.float64)
    queries = (slice(0, 3), slice(3, 5))
    mixes = [0.25 * min_max_scaled(lexical[rows]) + 0.75 * min_max_scaled(cosine[rows]) for rows in queries]
    expected = np.concatenate(mixes).astype(np.float32)
    hybrid = HybridScorer(encoder)
    assert np.array_equal(hybrid.predict(PAIRS), expected)
    assert hybrid.normalization == Normalization.QUERY_MIN_MAX and hybrid.weights == [0.25, 0.75]


def test_fused_reranker_is_the_unnormalised_mix_of_the_cross_encoder_and_the_cosine(
    tiny_model: CrossEncoder, tiny_bert_dir: Path
) -> None:
    encoder = BiEncoder(tiny_bert_dir, max_length=32, device="cpu")
    learned = tiny_model.predict(as_pairs(PAIRS)).astype(np.float64)
    cosine = BiEncoderScorer(encoder).predict(PAIRS, batch_size=32).astype(np.float64)
    fused = FusedReranker(tiny_model, encoder, prior_share=0.6)
    assert np.array_equal(fused.predict(PAIRS), (0.4 * learned + 0.6 * cosine).astype(np.float32))
    assert fused.normalization == Normalization.NONE and fused.prior_share == 0.6
