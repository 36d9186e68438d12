"""Torch inference options: bf16 autocast with an fp32 scoring head, its fallback, and the thread knob."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from backend_testkit import PAIRS
from scipy.stats import spearmanr

from rerank_lib import CrossEncoder
from rerank_lib.backends import _common, bf16_supported, scoring_head, torch_backend
from rerank_lib.errors import ConfigError


@pytest.fixture
def model(saved_tiny_dir: Path) -> CrossEncoder:
    return CrossEncoder(saved_tiny_dir, device="cpu")


def test_defaults(model: CrossEncoder) -> None:
    assert (model.backend, model.precision, model.num_threads) == ("torch", "fp32", None)
    assert model._backend_runner is None
    assert isinstance(bf16_supported(torch.device("cpu")), bool)


def test_bf16_is_close_and_keeps_scores_distinct(model: CrossEncoder, monkeypatch) -> None:
    # Forced on, so the autocast path runs on any CPU (emulated where there are no bf16 instructions).
    monkeypatch.setattr(torch_backend, "cpu_supports_bf16", lambda: True)
    fp32 = model.predict(PAIRS)
    bf16 = model.predict(PAIRS, precision="bf16")
    assert np.abs(bf16 - fp32).max() < 0.02
    assert spearmanr(bf16, fp32).statistic >= 0.99
    assert len(set(bf16.tolist())) == len(set(fp32.tolist()))  # fp32 head: no ties from bf16 rounding
    head = scoring_head(model.model, 1)
    assert "forward" not in head.__dict__  # the head's fp32 wrapper is removed after predict
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())  # weights untouched


def test_precision_set_at_load(saved_tiny_dir: Path, monkeypatch) -> None:
    used: list[str] = []
    real = torch_backend.torch_inference

    def spy(device: torch.device, precision: str = "fp32", *args: object):
        used.append(precision)
        return real(device, precision, *args)

    monkeypatch.setattr(torch_backend, "torch_inference", spy)
    monkeypatch.setattr("rerank_lib.backends.torch_inference", spy)
    model = CrossEncoder(saved_tiny_dir, device="cpu", precision="bf16")
    model.predict(PAIRS[:2])
    model.predict(PAIRS[:2], precision="fp32")
    assert used == ["bf16", "fp32"]


def test_bf16_falls_back_to_fp32_without_native_support(model: CrossEncoder, monkeypatch, caplog) -> None:
    monkeypatch.setattr(_common, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(torch_backend, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(torch_backend, "_warned", set())
    with caplog.at_level(logging.WARNING):
        scores = model.predict(PAIRS, precision="bf16")
    np.testing.assert_array_equal(scores, model.predict(PAIRS))
    assert "not natively supported" in caplog.text


def test_num_threads_applies_during_predict_only(saved_tiny_dir: Path, monkeypatch) -> None:
    model = CrossEncoder(saved_tiny_dir, device="cpu", num_threads=1)
    before = torch.get_num_threads()
    seen: list[int] = []
    inner = model.model.forward
    monkeypatch.setattr(model.model, "forward", lambda **kw: seen.append(torch.get_num_threads()) or inner(**kw))
    model.predict(PAIRS[:3])
    assert seen == [1]
    assert torch.get_num_threads() == before


def test_unknown_precision_in_predict(model: CrossEncoder) -> None:
    with pytest.raises(ConfigError, match="precision='half'"):
        model.predict(PAIRS[:1], precision="half")
