"""FusedReranker: the cross-encoder's and the bi-encoder's scores mixed per query, saved and loaded as one folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder, FusedReranker, load_reranker
from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.errors import ModelLoadError
from rerank_lib.fusion import (
    FUSION_FILE,
    PRIOR_FOLDER,
    attach_score_fusion,
    remove_score_fusion,
)
from rerank_lib.package import _hub_snapshot

PAIRS = [
    ("where does the cat sleep", "the cat sleeps in the car"),
    ("where does the cat sleep", "music and song"),
    ("where does the cat sleep", "a red car"),
    ("where does the cat sleep", "the dog runs"),
    ("what is the capital of france", "paris is the capital of france"),
    ("what is the capital of france", "the woman eats food"),
    ("what is the capital of france", "berlin is a city"),
]
QUERIES = (slice(0, 4), slice(4, 7))


@pytest.fixture
def prior(tiny_bert_dir: Path) -> BiEncoder:
    return BiEncoder(tiny_bert_dir, max_length=32, device="cpu")


def _order(scores: np.ndarray) -> list[list[int]]:
    return [np.argsort(-np.asarray(scores)[rows], kind="stable").tolist() for rows in QUERIES]


def test_share_zero_ranks_as_the_cross_encoder_and_share_one_as_the_bi_encoder(
    tiny_model: CrossEncoder, prior: BiEncoder
) -> None:
    alone = tiny_model.predict(PAIRS)
    cosine = BiEncoderScorer(prior).predict(PAIRS)
    assert _order(FusedReranker(tiny_model, prior, 0.0).predict(PAIRS)) == _order(alone)
    assert _order(FusedReranker(tiny_model, prior, 1.0).predict(PAIRS)) == _order(cosine)


def test_each_pair_mixes_the_probability_and_the_cosine_linearly(tiny_model: CrossEncoder, prior: BiEncoder) -> None:
    alone = np.asarray(tiny_model.predict(PAIRS), dtype=np.float64)
    cosine = np.asarray(BiEncoderScorer(prior).predict(PAIRS), dtype=np.float64)
    fused = FusedReranker(tiny_model, prior, 0.3).predict(PAIRS)
    np.testing.assert_allclose(fused, 0.7 * alone + 0.3 * cosine, atol=1e-6)
    # A pair's score does not depend on the other pairs of the call: single pairs and other queries score the same.
    np.testing.assert_allclose(FusedReranker(tiny_model, prior, 0.3).predict(PAIRS[4:5]), fused[4:5], atol=1e-6)


def test_rank_orders_documents_best_first_with_their_texts(tiny_model: CrossEncoder, prior: BiEncoder) -> None:
    fused = FusedReranker(tiny_model, prior, 0.5)
    documents = [document for _, document in PAIRS[:4]]
    ranking = fused.rank(PAIRS[0][0], documents, top_k=3, return_documents=True)
    scores = fused.predict(PAIRS[:4])
    assert [item["corpus_id"] for item in ranking] == np.argsort(-scores, kind="stable")[:3].tolist()
    assert all(item["text"] == documents[item["corpus_id"]] for item in ranking)


def test_saved_folder_loads_fused_and_still_loads_as_a_plain_cross_encoder(
    tiny_model: CrossEncoder, prior: BiEncoder, tmp_path: Path
) -> None:
    fused = FusedReranker(tiny_model, prior, 0.25)
    fused.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / FUSION_FILE).read_text())["prior_share"] == 0.25
    loaded = load_reranker(tmp_path / "model", device="cpu")
    assert isinstance(loaded, FusedReranker) and loaded.prior_share == 0.25
    np.testing.assert_allclose(loaded.predict(PAIRS), fused.predict(PAIRS), atol=1e-5)
    plain = CrossEncoder(tmp_path / "model", device="cpu")  # what the reference toolkit's users load
    np.testing.assert_allclose(plain.predict(PAIRS), tiny_model.predict(PAIRS), atol=1e-5)


def test_attach_copies_a_local_prior_folder_and_remove_restores_a_plain_folder(
    tiny_model: CrossEncoder, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    attach_score_fusion(folder, tiny_bert_dir, 0.4)
    assert (folder / PRIOR_FOLDER / "vocab.txt").read_text() == (tiny_bert_dir / "vocab.txt").read_text()
    attach_score_fusion(folder, tiny_bert_dir, 0.2)  # a second attach replaces the first
    assert load_reranker(folder).prior_share == 0.2
    remove_score_fusion(folder)
    assert not (folder / FUSION_FILE).exists() and not (folder / PRIOR_FOLDER).exists()
    assert isinstance(load_reranker(folder), CrossEncoder)


def test_bad_share_and_bad_folders_are_rejected_before_anything_is_written(
    tiny_model: CrossEncoder, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    with pytest.raises(ValueError, match="prior_share"):
        attach_score_fusion(folder, tiny_bert_dir, 1.5)
    assert not (folder / PRIOR_FOLDER).exists()
    with pytest.raises(ModelLoadError, match="no config.json"):
        attach_score_fusion(tmp_path / "empty", tiny_bert_dir, 0.3)
    (folder / FUSION_FILE).write_text(json.dumps({"prior_share": 0.3, "mix": "softmax"}))
    with pytest.raises(ModelLoadError, match=f"{FUSION_FILE}.*mix"):
        load_reranker(folder)
    (folder / FUSION_FILE).write_text(json.dumps({"prior_share": 0.3}))
    with pytest.raises(ModelLoadError, match="prior folder"):
        load_reranker(folder)


def test_a_fused_folder_pushed_to_the_hub_loads_fused_from_its_repo_id(
    tiny_model: CrossEncoder, prior: BiEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_lib.hub import RetryPolicy, push_folder
    from tests.hub_server import isolated_hub

    token = "hf_FusionTestToken0123456789abcdef"
    fused = FusedReranker(tiny_model, prior, 0.4)
    fused.save_pretrained(tmp_path / "model")
    tiny_model.save_pretrained(tmp_path / "plain")
    with isolated_hub(monkeypatch, tmp_path, token, set_endpoint=True) as hub:
        push_folder(tmp_path / "model", "org/fused", token=token, retry=RetryPolicy(attempts=1, base_delay=0.0))
        push_folder(tmp_path / "plain", "org/plain", token=token, retry=RetryPolicy(attempts=1, base_delay=0.0))
        cache = str(tmp_path / "hub-cache")
        loaded = load_reranker("org/fused", endpoint=hub.url, token=token, cache_dir=cache, device="cpu")
        # A repo without the fusion file is left to CrossEncoder (which fetches it through transformers).
        assert _hub_snapshot("org/plain", {"token": token, "cache_dir": cache}, hub.url) is None
    assert isinstance(loaded, FusedReranker) and loaded.prior_share == 0.4
    np.testing.assert_allclose(loaded.predict(PAIRS), fused.predict(PAIRS), atol=1e-5)
