"""train.precision: bf16 autocast where the hardware has native bf16, fp32 (with a warning) elsewhere."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rerank_lib.backends import torch_backend
from rerank_lib.errors import ConfigError
from tasks.config import TrainConfig, load_params
from tasks.train import SUMMARY_FILE, use_bf16
from tests.tasks.train_testkit import train_toy_model

ROOT = Path(__file__).resolve().parents[2]


def _train(root: Path, base: Path, precision: str) -> Path:
    return train_toy_model(root, base, learning_rate=1e-3, precision=precision)


def test_fp32_is_the_default_and_never_autocasts() -> None:
    assert TrainConfig.model_fields["precision"].default == "fp32"
    assert use_bf16("fp32") is False


def test_bf16_follows_the_hardware() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert use_bf16("bf16") is torch_backend.bf16_supported(device)


def test_auto_picks_bf16_exactly_where_it_is_native(monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # noqa: ANN001
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert use_bf16("auto") is torch_backend.bf16_supported(device)
    monkeypatch.setattr(torch_backend, "bf16_supported", lambda device: False)
    with caplog.at_level(logging.WARNING, logger="tasks.train"):
        assert use_bf16("auto") is False
    assert "no native bf16" not in caplog.text  # auto falls back quietly: fp32 is what it asked for there
    monkeypatch.setattr(torch_backend, "bf16_supported", lambda device: True)
    assert use_bf16("auto") is True


def test_bf16_without_native_kernels_falls_back_to_fp32_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(torch_backend, "bf16_supported", lambda device: False)  # a CPU without AVX512-BF16/AMX
    with caplog.at_level(logging.WARNING, logger="tasks.train"):
        assert use_bf16("bf16") is False
    assert "no native bf16 kernels: training in fp32" in caplog.text


def test_a_bf16_run_records_its_precision_and_trains_other_weights_than_fp32(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    fp32 = _train(tmp_path / "fp32", tiny_bert_dir, "fp32")
    bf16 = _train(tmp_path / "bf16", tiny_bert_dir, "bf16")
    native = use_bf16("bf16")
    summaries = [json.loads((out / SUMMARY_FILE).read_text()) for out in (fp32, bf16)]
    assert [s["precision_used"] for s in summaries] == ["fp32", "bf16" if native else "fp32"]
    assert summaries[1]["hyperparameters"]["precision"] == "bf16"
    weights = [load_file(out / "model.safetensors") for out in (fp32, bf16)]
    same = all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert same is not native  # same seed and data: only bf16 autocast changes the arithmetic


def test_an_unknown_precision_is_rejected_with_its_key() -> None:
    with pytest.raises(ConfigError, match="train.precision"):
        load_params(ROOT / "params.yaml", overrides={"train": {"precision": "fp16"}})
