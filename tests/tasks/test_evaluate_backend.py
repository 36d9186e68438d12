"""evaluate.backend: auto keeps fp32 torch's numbers with the fastest engine here; a named engine is used as named;
the trained model's folder is never written to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder, load_reranker
from rerank_lib.package import CROSS_ENCODER_FOLDER, PackageSpec, write_package
from tasks.evaluate_backend import choose_backend, remove_view
from tasks.evaluate_config import EvaluateConfig

SUITE = {"toy": {"kind": "beir", "folder": "unused"}}
CITIES = ("paris", "rome", "berlin")
PAIRS = [
    (f"what is the capital of {c}", f"{city} is a city in {c}") for c in ("france", "italy") for city in CITIES
] * 20


@pytest.fixture
def model_dir(tiny_model: CrossEncoder, tmp_path: Path) -> Path:
    tiny_model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_small_suites_stay_with_torch(model_dir: Path) -> None:
    choice, view = choose_backend(EvaluateConfig(suite=SUITE), model_dir, PAIRS, total_pairs=len(PAIRS))
    assert (choice.backend, choice.precision, view) == ("torch", "fp32", None)
    assert "below 20000" in choice.reason


def test_auto_picks_the_fastest_engine_that_keeps_torch_scores(model_dir: Path) -> None:
    before = sorted(p.name for p in model_dir.iterdir())
    cfg = EvaluateConfig(suite=SUITE, backend_auto_min_pairs=0)
    choice, view = choose_backend(cfg, model_dir, PAIRS, total_pairs=len(PAIRS))
    try:
        assert set(choice.seconds_per_pair) >= {"torch", "onnx", "openvino"}
        assert all(difference <= 1e-4 for difference in choice.max_score_difference.values())  # fp32 exports agree
        fastest = min(choice.seconds_per_pair, key=choice.seconds_per_pair.get)
        assert choice.backend == fastest and choice.precision == "fp32" and choice.quantize is None
        chosen = load_reranker(view, **choice.options()).predict(PAIRS)
        np.testing.assert_allclose(chosen, load_reranker(model_dir).predict(PAIRS), atol=1e-4)
    finally:
        remove_view(view)
    assert sorted(p.name for p in model_dir.iterdir()) == before  # exports went to the scratch view


def test_a_named_engine_is_used_as_named(model_dir: Path) -> None:
    cfg = EvaluateConfig(suite=SUITE, backend="onnx", quantize="int8")
    choice, view = choose_backend(cfg, model_dir, PAIRS, total_pairs=len(PAIRS))
    try:
        assert choice.options() == {"backend": "onnx", "precision": "fp32", "quantize": "int8"}
        assert choice.reason == "evaluate.backend" and view is not None
        load_reranker(view, **choice.options()).predict(PAIRS[:4])
        assert (view / "onnx" / "model_qint8.onnx").is_file() and not (model_dir / "onnx").exists()
    finally:
        remove_view(view)


def test_a_package_exports_its_cross_encoder_into_the_view_only(model_dir: Path, tmp_path: Path) -> None:
    package = write_package(tmp_path / "package", model_dir, PackageSpec(share=0.3, first_stage="bm25"))
    before = sorted(str(p.relative_to(package)) for p in package.rglob("*"))
    cfg = EvaluateConfig(suite=SUITE, backend="onnx")
    choice, view = choose_backend(cfg, package, PAIRS, total_pairs=len(PAIRS))
    try:
        scores = load_reranker(view, **choice.options()).predict(PAIRS[:6])
        np.testing.assert_allclose(scores, load_reranker(package).predict(PAIRS[:6]), atol=1e-4)
        assert (view / CROSS_ENCODER_FOLDER / "onnx" / "model.onnx").is_file()
    finally:
        remove_view(view)
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*")) == before
