"""RerankPackage: a cross-encoder and a first stage mixed per query, saved as one folder that only its loader opens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder, RerankPackage, load_reranker
from rerank_lib.bi_encoder import BiEncoderScorer
from rerank_lib.errors import ModelLoadError
from rerank_lib.mixed_scorer import min_max_scaled
from rerank_lib.package import (
    CROSS_ENCODER_FOLDER,
    DEV_STANDARD,
    FIRST_STAGE_FOLDER,
    PACKAGE_FILE,
    CrossEncoderLogits,
    PackageSpec,
    Sigmoid,
    standard_scale,
    write_package,
)

PAIRS = [
    ("where does the cat sleep", "the cat sleeps in the car"),
    ("where does the cat sleep", "music and song"),
    ("where does the cat sleep", "a red car"),
    ("what is the capital of france", "paris is the capital of france"),
    ("what is the capital of france", "the woman eats food"),
    ("what is the capital of france", "berlin is a city"),
]
QUERIES = (slice(0, 3), slice(3, 6))


@pytest.fixture
def cross_encoder_dir(tiny_model: CrossEncoder, tmp_path: Path) -> Path:
    tiny_model.save_pretrained(tmp_path / "ce")
    return tmp_path / "ce"


def expected_mix(logits: np.ndarray, first: np.ndarray, share: float) -> np.ndarray:
    out = np.zeros(len(logits))
    for rows in QUERIES:
        out[rows] = (1 - share) * min_max_scaled(logits[rows]) + share * min_max_scaled(first[rows])
    return out


def test_each_query_mixes_min_max_scaled_logits_and_cosines(cross_encoder_dir: Path, tiny_bert_dir: Path) -> None:
    logits = CrossEncoderLogits(CrossEncoder(cross_encoder_dir, device="cpu"))
    cosine = BiEncoderScorer(str(tiny_bert_dir))
    package = RerankPackage(logits, cosine, PackageSpec(0.3))
    raw_logits = np.asarray(logits.predict(PAIRS), dtype=np.float64)
    np.testing.assert_allclose(
        package.predict(PAIRS), expected_mix(raw_logits, np.asarray(cosine.predict(PAIRS), dtype=float), 0.3), atol=1e-6
    )
    # The logits are the cross-encoder's own, before its sigmoid; Sigmoid gives back its probabilities.
    np.testing.assert_allclose(
        Sigmoid(logits).predict(PAIRS), CrossEncoder(cross_encoder_dir, device="cpu").predict(PAIRS), atol=1e-6
    )


def test_a_dev_standard_package_scores_each_pair_on_its_own(
    cross_encoder_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    logits = CrossEncoderLogits(CrossEncoder(cross_encoder_dir, device="cpu"))
    cosine = BiEncoderScorer(str(tiny_bert_dir))
    raw_logits = np.asarray(logits.predict(PAIRS), dtype=np.float64)
    raw_cosine = np.asarray(cosine.predict(PAIRS), dtype=np.float64)
    scales = {"cross_encoder": standard_scale(raw_logits), "first_stage": standard_scale(raw_cosine)}
    assert scales["cross_encoder"] == pytest.approx([raw_logits.mean(), raw_logits.std()])
    spec = PackageSpec(0.3, first_stage_model="mini", normalization=DEV_STANDARD, scales=scales)
    folder = write_package(tmp_path / "pkg", cross_encoder_dir, spec, tiny_bert_dir)
    package = load_reranker(folder, device="cpu")
    assert isinstance(package, RerankPackage) and package.spec == spec
    mixed = (
        0.7 * (raw_logits - raw_logits.mean()) / raw_logits.std()
        + 0.3 * (raw_cosine - raw_cosine.mean()) / raw_cosine.std()
    )
    expected = 1 / (1 + np.exp(-mixed))  # the logistic of the mix: a score in (0, 1), as a cross-encoder's
    scores = package.predict(PAIRS)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # A pair scores the same alone, in another order or beside other queries: the scores compare across queries
    # (up to the float noise of padding a batch, magnified by the tiny model's small logit spread).
    for row, pair in enumerate(PAIRS):
        np.testing.assert_allclose(package.predict([pair]), scores[row : row + 1], atol=5e-4)
    np.testing.assert_allclose(package.predict(PAIRS[::-1]), scores[::-1], atol=5e-4)
    # A first-stage score passed in is read on the packaged bi-encoder's scale (its cosine), not rescaled per query.
    np.testing.assert_allclose(package.predict(PAIRS, first_stage_scores=raw_cosine), scores, atol=1e-5)
    assert standard_scale([2.0, 2.0]) == [2.0, 1.0]  # no spread to divide by: scores keep their distances


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"normalization": DEV_STANDARD}, "needs scales for"),
        ({"normalization": DEV_STANDARD, "scales": {"cross_encoder": [0.0, 1.0]}}, "needs scales for"),
        ({"normalization": DEV_STANDARD, "scales": {"cross_encoder": [0.0, 0.0], "first_stage": [0.0, 1.0]}},
         r"scales\['cross_encoder'\] must be \[mean, std\] with std > 0"),
        ({"normalization": DEV_STANDARD, "first_stage": "bm25",
          "scales": {"cross_encoder": [0.0, 1.0], "first_stage": [0.0, 1.0]}}, "BM25 first stage scores against"),
        ({"scales": {"cross_encoder": [0.0, 1.0], "first_stage": [0.0, 1.0]}}, "scales belong to normalization"),
        ({"normalization": "z-score"}, "unsupported package scale"),
    ],
)  # fmt: skip
def test_a_package_scale_that_cannot_score_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PackageSpec(0.5, **fields)


def test_a_first_stage_score_passed_in_is_used_on_any_scale(cross_encoder_dir: Path, tiny_bert_dir: Path) -> None:
    package = RerankPackage(
        CrossEncoderLogits(CrossEncoder(cross_encoder_dir, device="cpu")),
        BiEncoderScorer(str(tiny_bert_dir)),
        PackageSpec(0.6),
    )
    bm25_like = [12.0, 3.0, 7.5, 40.0, 1.0, 2.0]
    scores = package.predict(PAIRS, first_stage_scores=bm25_like)
    # An affine change of the passed scores (another retriever's scale) changes nothing: each is scaled per query.
    shifted = package.predict(PAIRS, first_stage_scores=[0.1 * s - 7 for s in bm25_like])
    np.testing.assert_allclose(scores, shifted, atol=1e-6)
    assert scores[0] > scores[1]  # at share 0.6 the first stage's full range outweighs the cross-encoder's
    ranked = package.rank(PAIRS[3][0], [p for _, p in PAIRS[3:]], first_stage_scores=bm25_like[3:])
    assert [row["corpus_id"] for row in ranked][0] == 0  # the passage the first stage scored far above the rest
    with pytest.raises(ValueError, match="first_stage_scores has 2 values for 6 pairs"):
        package.predict(PAIRS, first_stage_scores=[1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        package.predict(PAIRS, first_stage_scores=[1.0, float("nan"), 1, 1, 1, 1])


def test_a_saved_package_loads_only_through_its_loader(
    cross_encoder_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = write_package(
        tmp_path / "pkg", cross_encoder_dir, PackageSpec(0.4, first_stage_model="mini"), tiny_bert_dir
    )
    assert sorted(p.name for p in folder.iterdir()) == [CROSS_ENCODER_FOLDER, FIRST_STAGE_FOLDER, PACKAGE_FILE]
    assert json.loads((folder / PACKAGE_FILE).read_text())["share"] == 0.4
    with pytest.raises(ModelLoadError, match="is a rerank package .* load it with rerank_lib.load_reranker"):
        CrossEncoder(folder)
    loaded = load_reranker(folder, device="cpu")
    assert isinstance(loaded, RerankPackage) and loaded.share == 0.4
    # The cross-encoder inside is a plain folder that scores alone, exactly as the one packaged.
    alone = CrossEncoder(folder / CROSS_ENCODER_FOLDER, device="cpu").predict(PAIRS)
    np.testing.assert_allclose(alone, CrossEncoder(cross_encoder_dir, device="cpu").predict(PAIRS), atol=1e-6)
    direct = RerankPackage(
        CrossEncoderLogits(CrossEncoder(cross_encoder_dir, device="cpu")),
        BiEncoderScorer(str(tiny_bert_dir)),
        PackageSpec(0.4),
    )
    np.testing.assert_allclose(loaded.predict(PAIRS), direct.predict(PAIRS), atol=1e-6)


def test_a_bm25_package_has_no_first_stage_folder(cross_encoder_dir: Path, tmp_path: Path) -> None:
    folder = write_package(tmp_path / "pkg", cross_encoder_dir, PackageSpec(0.5, first_stage="bm25"))
    assert not (folder / FIRST_STAGE_FOLDER).exists()
    scores = load_reranker(folder, device="cpu").predict(PAIRS)
    assert scores[0] > scores[1]  # "cat sleeps" shares words with the query, "music and song" none


def test_bad_specs_and_damaged_packages_fail_naming_what_is_wrong(cross_encoder_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share must lie in"):
        PackageSpec(0.0)
    with pytest.raises(ValueError, match="needs the bi-encoder"):
        write_package(tmp_path / "pkg", cross_encoder_dir, PackageSpec(0.5))
    assert not (tmp_path / "pkg").exists()
    folder = write_package(tmp_path / "pkg", cross_encoder_dir, PackageSpec(0.5, first_stage="bm25"))
    (folder / PACKAGE_FILE).write_text('{"share": 0.5, "first_stage": "splade"}')
    with pytest.raises(ModelLoadError, match=r"rerank_package.json: not a valid rerank package file"):
        load_reranker(folder)


def test_a_package_pushed_to_the_hub_loads_as_a_package_from_its_repo_id(
    cross_encoder_dir: Path, tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_lib.hub import RetryPolicy, push_folder
    from tests.hub_server import isolated_hub

    token = "hf_PackageTestToken0123456789abcdef"
    folder = write_package(tmp_path / "pkg", cross_encoder_dir, PackageSpec(0.3), tiny_bert_dir)
    with isolated_hub(monkeypatch, tmp_path, token, set_endpoint=True) as hub:
        push_folder(folder, "org/package", token=token, retry=RetryPolicy(attempts=1, base_delay=0.0))
        loaded = load_reranker(
            "org/package", endpoint=hub.url, token=token, cache_dir=str(tmp_path / "c"), device="cpu"
        )
    assert isinstance(loaded, RerankPackage) and loaded.share == 0.3  # its parts, from subfolders, at one commit
    np.testing.assert_allclose(loaded.predict(PAIRS), load_reranker(folder, device="cpu").predict(PAIRS), atol=1e-5)
