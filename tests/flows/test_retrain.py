"""End to end: the Prefect flow on the packaged MiniLM and real WikiQA, with the quick profile."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.retrain import retrain
from rerank_lib import CrossEncoder, RerankPackage, load_reranker
from tests.e2e_support import link_raw_data, quick_params
from tests.hub_server import LocalHub

pytestmark = pytest.mark.slow


CANARY = "hf_CanaryTokenThatMustNeverBeWritten0123"
# MLflow reads these from the environment for an authenticated tracking server; they too must appear nowhere.
MLFLOW_CANARIES = {
    "MLFLOW_TRACKING_PASSWORD": "MlflowPasswordCanaryThatMustNeverBeWritten",
    "MLFLOW_TRACKING_TOKEN": "MlflowTokenCanaryThatMustNeverBeWritten",
}


def test_quick_flow_trains_evaluates_documents_registers_and_pushes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    quick_params(tmp_path)
    link_raw_data(tmp_path)
    monkeypatch.setenv("HF_TOKEN", CANARY)
    for name, value in MLFLOW_CANARIES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))

    with LocalHub(token=CANARY) as hub:
        push = {"enabled": True, "repo_id": "team/wikiqa-reranker", "endpoint": hub.url, "backoff_seconds": 0.0}
        outputs = retrain(root=str(tmp_path), overrides={"push": push})
        pushed_files = hub.files("team/wikiqa-reranker")
        hub_url = hub.url

    metrics = json.loads(Path(outputs["metrics"]).read_text())
    report = json.loads(Path(outputs["metrics"]).with_name("report.json").read_text())
    # What ships is what the package stage chose on the dev split: the cross-encoder alone or a package around it.
    package = report["shipped"]["kind"] == "package"
    assert (
        report["shipped"]["kind"]
        == json.loads((tmp_path / "artifacts" / "dev" / "package.json").read_text())["shipped"]
    )
    shipped = load_reranker(outputs["model"])
    assert isinstance(shipped, RerankPackage if package else CrossEncoder)
    alone = CrossEncoder(Path(outputs["model"]) / "cross_encoder") if package else shipped
    pairs = [
        ("how are glacier caves formed?", "A glacier cave is a cave formed within the ice of a glacier."),
        ("how are glacier caves formed?", "The stock market closed higher on Friday."),
    ]
    relevant, irrelevant = alone.predict(pairs)
    assert 0.0 < irrelevant < 1.0 and 0.0 < relevant < 1.0
    ranking = {f"{prefix}{name}" for prefix in ("", "base_") for name in ("map", "mrr@10", "ndcg@10")}
    classification = {"accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall"}
    expected = (
        {f"wikiqa_test_{name}" for name in ranking}  # base_*: the bi-encoder's order, the first stage reranked
        | {f"wikiqa_test_pairs_{name}" for name in classification | {"average_precision"}}
        | {"stsb_test_pearson", "stsb_test_spearman"}
        | {f"scifact_dev_{name}" for name in ranking}  # base_*: BM25's top 5
    )
    assert set(metrics["metrics"]) == expected
    assert set(metrics["baselines"]["bi_encoder"]) == {k for k in expected if "_base_" not in k}
    assert set(metrics["components"]["cross_encoder"]) == {k for k in expected if "_base_" not in k}
    assert set(metrics["baselines"]["bm25"]) == {
        f"{e}_{n}" for e in ("wikiqa_test", "scifact_dev") for n in ranking if "base_" not in n
    }
    for group in (metrics["metrics"], *metrics["baselines"].values()):  # numbers only: what `dvc metrics show` prints
        for key, value in group.items():
            assert isinstance(value, float) and math.isfinite(value), key
            assert "threshold" in key or -1.0 <= value <= 1.0, key
    assert report["evaluators"]["wikiqa_test"]["samples"] == 20
    assert report["evaluators"]["stsb_test"] == report["evaluators"]["stsb_test"] | {
        "kind": "correlation",
        "samples": 20,
    }
    assert report["evaluators"]["wikiqa_test_pairs"]["thresholds_chosen_on"].startswith("test (the evaluated split")

    card = Path(outputs["card"]).read_text()
    assert card.startswith("---\n") and "loss:LambdaLoss" in card

    mlflow.set_tracking_uri(outputs["mlflow_tracking_uri"])
    assert outputs["mlflow_tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient()
    run = client.get_run(outputs["mlflow_run_id"])
    assert run.data.metrics["wikiqa_test_ndcg_at_10"] == pytest.approx(metrics["metrics"]["wikiqa_test_ndcg@10"])
    assert run.data.params["train.datasets.wikiqa-train-lists.loss"] == "LambdaLoss"
    versions = client.search_model_versions("name='wikiqa-reranker'")
    assert [v.run_id for v in versions] == [outputs["mlflow_run_id"]]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"eval", "card", "config"} <= artifacts
    assert versions[0].source.startswith("models:/")  # the logged pyfunc model (an MLflow 3 LoggedModel)
    assert any(key.startswith("loss") for key in run.data.metrics)  # per-step training metrics

    assert outputs["promotion"].startswith("champion (first version")
    champion = mlflow.pyfunc.load_model("models:/wikiqa-reranker@champion")
    scores = champion.predict(pd.DataFrame({"query": [q for q, _ in pairs], "passage": [p for _, p in pairs]}))
    assert scores.shape == (2,) and np.allclose(scores, shipped.predict(pairs), atol=1e-5)  # it scores as evaluated
    assert outputs["hub_push"].startswith(hub_url)
    assert json.loads((tmp_path / "artifacts" / "push.json").read_text())["pushed"] is True
    weights = "cross_encoder/model.safetensors" if package else "model.safetensors"
    assert pushed_files[weights] == (Path(outputs["model"]) / weights).read_bytes()
    loader = "load_reranker" if package else "CrossEncoder"
    assert f'{loader}("team/wikiqa-reranker")' in pushed_files["README.md"].decode()  # usage names the repo
    assert outputs["mlflow_run_id"] in hub.commits[0].summary

    # The Hub token reached the Hub and nothing else; no secret is in a file written, a log line, an MLflow param
    # or tag, or the pushed files.
    assert all(r.headers.get("authorization") == f"Bearer {CANARY}" for r in hub.requests)
    captured = capfd.readouterr()
    assert "Failed to send telemetry" not in captured.out + captured.err + caplog.text
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    for secret in (CANARY, *MLFLOW_CANARIES.values()):
        assert secret not in captured.out + captured.err + caplog.text
        assert [p for p in files if secret.encode() in p.read_bytes()] == []
        assert secret not in json.dumps({**run.data.params, **run.data.tags})
        assert not any(secret.encode() in content for content in pushed_files.values())
