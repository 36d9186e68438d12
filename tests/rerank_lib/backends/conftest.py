"""Fixtures for backend tests: a saved tiny cross-encoder (trained-looking head) and toy pairs to score."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from backend_testkit import PAIRS

from rerank_lib import CrossEncoder


@pytest.fixture(scope="session")
def saved_tiny_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved as a one-output cross-encoder with its matrices redrawn at std 0.2, so scores spread out
    like a trained model's (at BERT's std 0.02 every pair scores ~0.41 and ranking checks mean nothing).
    Never modified: copy it."""
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.2, generator=generator)
    folder = tmp_path_factory.mktemp("saved-tiny") / "model"
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def model_dir(saved_tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the saved tiny cross-encoder, without any export yet."""
    return Path(shutil.copytree(saved_tiny_dir, tmp_path / "model"))


@pytest.fixture(scope="session")
def onnx_exported_dir(saved_tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the saved model exported once per session to fp32 and int8 ONNX; copy it before changing it."""
    folder = Path(shutil.copytree(saved_tiny_dir, tmp_path_factory.mktemp("onnx-exported") / "model"))
    CrossEncoder(folder, device="cpu", backend="onnx", quantize="int8")
    return folder


@pytest.fixture
def torch_scores(saved_tiny_dir: Path) -> torch.Tensor:
    return torch.from_numpy(CrossEncoder(saved_tiny_dir, device="cpu").predict(PAIRS))
