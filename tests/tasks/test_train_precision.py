"""train.precision: bf16 autocast where the hardware has native bf16, fp32 (with a warning) elsewhere."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from rerank_lib.backends import torch_backend
from tasks.config import TrackingConfig, TrainConfig, load_params
from tasks.train import SUMMARY_FILE, run_train, use_bf16

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [
    ("what is the capital of france", "paris is the capital of france", "the dog runs"),
    ("who reads a book", "the child reads a book", "a red car"),
    ("where does the cat sleep", "the cat sleeps in the car", "music and song"),
    ("what does the woman eat", "the woman eats food", "berlin is a city"),
]


def _train(root: Path, base: Path, precision: str) -> Path:
    prepared = root / "data" / "prepared"
    (prepared / "toy-lists").mkdir(parents=True)
    pd.DataFrame(
        {
            "query": [question for question, _, _ in PAIRS],
            "docs": [[positive, negative] for _, positive, negative in PAIRS],
            "labels": [[1.0, 0.0] for _ in PAIRS],
        }
    ).to_parquet(prepared / "toy-lists" / "train.parquet", index=False)
    cfg = TrainConfig(
        base_model=str(base),
        datasets={"toy-lists": {"loss": "ListNetLoss"}},
        max_length=32,
        epochs=2,
        batch_size=2,
        logging_steps=1,
        learning_rate=1e-3,
        precision=precision,
        evaluation={"steps": None},
    )
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="precision")
    out = root / "artifacts" / "trained"
    run_train(cfg, tracking, prepared, root / "artifacts" / "checkpoints", out, root)
    return out


def test_fp32_is_the_default_and_never_autocasts() -> None:
    assert TrainConfig().precision == "fp32"
    assert use_bf16("fp32") is False


def test_bf16_follows_the_hardware() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert use_bf16("bf16") is torch_backend.bf16_supported(device)


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


def test_an_unknown_precision_is_rejected_with_its_key(tmp_path: Path) -> None:
    from rerank_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="train.precision"):
        load_params(ROOT / "params.yaml", overrides={"train": {"precision": "fp16"}})
