"""OpenVINO backend: export on first load (from the ONNX export when there is one), reuse, fp32 parity, bf16."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from backend_testkit import PAIRS
from scipy.stats import spearmanr

from rerank_lib import CrossEncoder
from rerank_lib.backends import onnx


def test_first_load_exports_and_matches_torch(model_dir: Path, torch_scores: torch.Tensor, monkeypatch) -> None:
    model = CrossEncoder(model_dir, device="cpu", backend="openvino")
    xml = model_dir / "openvino" / "openvino_model.xml"
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert not (model_dir / "onnx").exists()  # the intermediate ONNX graph was temporary
    np.testing.assert_allclose(model.predict(PAIRS, batch_size=7), torch_scores.numpy(), atol=1e-4, rtol=0)

    stamp = xml.stat().st_mtime_ns
    monkeypatch.setattr(onnx, "_write_onnx", lambda *args: pytest.fail("exported again"))
    again = CrossEncoder(model_dir, device="cpu", backend="openvino", num_threads=1)
    assert xml.stat().st_mtime_ns == stamp
    np.testing.assert_allclose(again.predict(PAIRS), torch_scores.numpy(), atol=1e-4, rtol=0)


def test_converts_an_existing_onnx_export(onnx_exported_dir: Path, tmp_path: Path, monkeypatch) -> None:
    folder = Path(shutil.copytree(onnx_exported_dir, tmp_path / "model"))
    monkeypatch.setattr(onnx, "_write_onnx", lambda *args: pytest.fail("the ONNX file next to the model was ignored"))
    CrossEncoder(folder, device="cpu", backend="openvino")
    assert (folder / "openvino" / "openvino_model.xml").is_file()


def test_bf16_precision(onnx_exported_dir: Path, tmp_path: Path, torch_scores: torch.Tensor) -> None:
    folder = Path(shutil.copytree(onnx_exported_dir, tmp_path / "model"))
    model = CrossEncoder(folder, device="cpu", backend="openvino", precision="bf16")
    scores = model.predict(PAIRS)
    assert np.abs(scores - torch_scores.numpy()).max() < 0.05
    assert spearmanr(scores, torch_scores.numpy()).statistic >= 0.95
    np.testing.assert_allclose(model.predict(PAIRS, precision="fp32"), torch_scores.numpy(), atol=1e-4, rtol=0)
