"""train.score_fusion: the train stage saves the bi-encoder beside the model; evaluate scores the model as it ships."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from rerank_lib import FusedReranker, load_reranker
from rerank_lib.errors import ConfigError
from rerank_lib.fusion import FUSION_FILE, PRIOR_FOLDER
from tasks.config import EvaluateConfig, TrackingConfig
from tasks.evaluate import CROSS_ENCODER_COMPONENT, run_evaluate
from tasks.tracking import RUN_ID_ENV
from tasks.train import SUMMARY_FILE
from tests.tasks.train_testkit import QUESTIONS, train_toy_model


def _fusion(base: Path, share: float) -> dict:
    return {"prior_model": str(base), "prior_share": share}


def test_the_model_is_saved_with_its_prior_and_loads_fused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tiny_bert_dir, 0.3))
    assert (out / PRIOR_FOLDER / "config.json").is_file()
    assert json.loads((out / FUSION_FILE).read_text())["prior_share"] == 0.3
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["score_fusion"]["prior_share"] == 0.3
    assert "score_fusion" not in summary["run_config"]["train"]  # the fusion is not part of what was trained
    model = load_reranker(out, device="cpu")
    assert isinstance(model, FusedReranker) and model.prior_share == 0.3


def test_editing_only_the_fusion_updates_the_folder_without_training_again(
    tiny_bert_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tiny_bert_dir, 0.3))
    trained = json.loads((out / SUMMARY_FILE).read_text())
    weights = (out / "model.safetensors").read_bytes()
    with caplog.at_level(logging.INFO, logger="tasks.train"):
        train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tiny_bert_dir, 0.6))
    assert "nothing trained" in caplog.text
    assert json.loads((out / FUSION_FILE).read_text())["prior_share"] == 0.6
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["training_seconds"] == trained["training_seconds"]  # the recorded run, not a new one
    assert (out / "model.safetensors").read_bytes() == weights
    train_toy_model(tmp_path, tiny_bert_dir)  # fusion switched off: a plain cross-encoder folder again
    assert not (out / FUSION_FILE).exists() and not (out / PRIOR_FOLDER).exists()
    # Another training setting does train again.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tasks.train"):
        train_toy_model(tmp_path, tiny_bert_dir, epochs=1)
    assert "nothing trained" not in caplog.text
    assert json.loads((out / SUMMARY_FILE).read_text())["global_step"] < trained["global_step"]


def test_a_flow_run_that_only_edits_the_fusion_records_in_its_own_mlflow_run(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tiny_bert_dir, 0.3))
    trained_run = json.loads((out / SUMMARY_FILE).read_text())["mlflow_run_id"]
    second_run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_run(
        mlflow.get_experiment_by_name("toy-lists").experiment_id
    )
    monkeypatch.setenv(RUN_ID_ENV, second_run.info.run_id)  # what the flow gives its training subprocess
    train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tiny_bert_dir, 0.6))
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["mlflow_run_id"] == second_run.info.run_id != trained_run  # register logs share 0.6 there


def test_a_prior_that_is_no_model_fails_before_training_naming_the_key(tiny_bert_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ConfigError, match=r"train\.score_fusion\.prior_model: .*not-a-model"):
        train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tmp_path / "not-a-model", 0.3))
    assert not (tmp_path / "artifacts" / "checkpoints").exists()


def test_evaluate_scores_the_fused_model_and_records_the_cross_encoder_alone(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    out = train_toy_model(tmp_path, tiny_bert_dir, score_fusion=_fusion(tiny_bert_dir, 0.3))
    test_folder = tmp_path / "data" / "prepared" / "toy-test"
    test_folder.mkdir(parents=True)
    others = [positive for _, positive, _ in QUESTIONS]
    pd.DataFrame(
        {
            "query": [question for question, _, _ in QUESTIONS],
            "positive": [[positive] for _, positive, _ in QUESTIONS],
            "negative": [[negative, *[o for o in others if o != positive][:2]] for _, positive, negative in QUESTIONS],
        }
    ).to_parquet(test_folder / "test.parquet", index=False)
    suite = {"toy": {"kind": "reranking", "dataset": "toy-test", "first_stage": "bi-encoder"}}
    cfg = EvaluateConfig(suite=suite, bi_encoder=str(tiny_bert_dir))
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="toy-lists")
    result = run_evaluate(cfg, tracking, out, tmp_path / "data" / "prepared", tmp_path / "eval", tmp_path)
    written = json.loads(result.metrics_path.read_text())
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["score_fusion"] == {"prior_share": 0.3}
    alone = written["components"][CROSS_ENCODER_COMPONENT]
    assert set(alone) == {key for key in written["metrics"] if "_base_" not in key}
    # The fused model ranks differently from its cross-encoder: the two columns are two measurements.
    model = load_reranker(out, device="cpu")
    pairs = [(question, text) for question, positive, negative in QUESTIONS for text in (positive, negative, *others)]
    fused_order = model.predict(pairs).argsort().tolist()
    alone_order = model.cross_encoder.predict(pairs).argsort().tolist()
    assert fused_order != alone_order
