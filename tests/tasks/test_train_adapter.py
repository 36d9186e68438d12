"""train.adapter: the train stage trains a LoRA adapter and ships the merged model, with the adapter beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from rerank_lib import CrossEncoder, load_reranker
from rerank_lib.errors import ConfigError
from tasks.config import EvaluateConfig, TrackingConfig, load_params
from tasks.evaluate import run_evaluate
from tasks.train import SUMMARY_FILE
from tests.tasks.train_testkit import QUESTIONS, train_toy_model

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}
PAIRS = [(question, answer) for question, answer, _ in QUESTIONS]


def test_the_stage_ships_the_merged_model_and_the_adapter_with_equal_scores(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    out = train_toy_model(tmp_path, tiny_bert_dir, adapter=ADAPTER, learning_rate=1e-3)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert (out / "adapter" / "adapter_config.json").is_file()
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["hyperparameters"]["adapter"]["r"] == 4
    merged = CrossEncoder(out, device="cpu")
    adapter = CrossEncoder(out / "adapter", device="cpu")
    assert not merged.has_adapter and adapter.has_adapter
    np.testing.assert_allclose(merged.predict(PAIRS), adapter.predict(PAIRS), atol=1e-5)
    base = CrossEncoder(tiny_bert_dir, device="cpu")
    trained_encoder = load_file(str(out / "model.safetensors"))["bert.encoder.layer.0.attention.self.query.weight"]
    base_encoder = base.model.bert.encoder.layer[0].attention.self.query.weight.detach()
    assert (trained_encoder - base_encoder).abs().max() > 0  # the adapter was folded into the weights
    checkpoints = sorted((tmp_path / "artifacts" / "checkpoints").glob("*/checkpoint-*"))  # a folder per config
    assert checkpoints and (checkpoints[-1] / "adapter_model.safetensors").is_file()


def test_the_rest_of_the_pipeline_evaluates_the_shipped_folder(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = train_toy_model(tmp_path, tiny_bert_dir, adapter=ADAPTER)
    assert isinstance(load_reranker(out, device="cpu"), CrossEncoder)
    samples = tmp_path / "data" / "prepared" / "toy-test"
    samples.mkdir(parents=True)
    import pandas as pd

    frame = pd.DataFrame(
        {"query": [q for q, _, _ in QUESTIONS], "positive": [[p] for _, p, _ in QUESTIONS],
         "negative": [[n] for _, _, n in QUESTIONS]}
    )  # fmt: skip
    frame.to_parquet(samples / "test.parquet", index=False)
    cfg = EvaluateConfig(suite={"toy": {"kind": "reranking", "dataset": "toy-test", "first_stage": "none"}})
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="toy-lists")
    result = run_evaluate(cfg, tracking, out, tmp_path / "data" / "prepared", tmp_path / "eval", tmp_path)
    assert 0.0 <= result.metrics[result.primary_metric] <= 1.0


def test_the_lora_profile_turns_the_adapter_on() -> None:
    lora = load_params(ROOT / "params.yaml", profile="lora")
    default = load_params(ROOT / "params.yaml")
    assert default.train.adapter is None
    assert lora.train.adapter is not None and lora.train.adapter.r == 16
    assert lora.train.datasets == default.train.datasets and lora.train.epochs == default.train.epochs


def test_a_bad_adapter_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train.adapter.r"):
        load_params(ROOT / "params.yaml", overrides={"train": {"adapter": {"r": 0}}})
    with pytest.raises(ConfigError, match=r"unknown key 'train.adapter.rank'"):
        load_params(ROOT / "params.yaml", overrides={"train": {"adapter": {"rank": 8}}})
