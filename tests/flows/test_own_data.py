"""A collection the project has never seen goes from files to a registered, promoted model with its own names,
through a profile and the README's commands alone: the Prefect flow, then `dvc repro` on the same profile.

The collection (tests/own_data_support.py) is synthetic and lives outside the project; the base model is the tiny
test BERT, so the run takes about a minute per entry point.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from flows.retrain import retrain
from rerank_app.cli import main
from tests.e2e_support import copy_project, env_with_venv
from tests.own_data_support import acme_profile, write_collection

pytestmark = pytest.mark.slow
DEMO_WORDS = ("wikiqa", "scifact", "trec", "stsb", "sick")


def assert_no_demo(text: str, where: str) -> None:
    lowered = text.lower()
    assert not [word for word in DEMO_WORDS if word in lowered], f"{where} names the demo"


def test_a_new_collection_becomes_its_own_promoted_model(tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    collection = write_collection(tmp_path / "acme-data")  # kept outside the project, as a team's share would be
    (root / "profiles" / "acme.yaml").write_text(yaml.safe_dump(acme_profile(collection, tiny_bert_dir)))

    outputs = retrain(root=str(root), profile="profiles/acme.yaml")

    eval_dir = root / "artifacts" / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    report = json.loads((eval_dir / "report.json").read_text())
    names = set(metrics["metrics"])
    assert {"acme_pairs_test_average_precision", "acme_pairs_test_f1", "acme_lists_test_ndcg@10"} <= names
    assert {"acme_lists_test_base_ndcg@10", "acme_beir_ndcg@10", "acme_beir_base_ndcg@10"} <= names
    assert all(name.startswith(("acme_pairs_test_", "acme_lists_test_", "acme_beir_")) for name in names)
    assert report["evaluators"]["acme_pairs_test"]["thresholds_chosen_on"] == "dev"  # the dataset has a dev split
    assert report["evaluators"]["acme_lists_test"]["first_stage"] == "BM25"
    details = sorted(p.name for p in (eval_dir / "details").iterdir())
    assert all(any(name in file for name in ("acme_pairs_test", "acme_lists_test", "acme_beir")) for file in details), (
        details
    )

    card = (root / "artifacts" / "model" / "README.md").read_text()
    assert "ACME reranker" in card and "ACME pairs" in card
    header = yaml.safe_load(card.split("---\n")[1])
    assert {result["dataset"]["name"] for result in header["model-index"][0]["results"]} >= {"ACME pairs"}
    for path in [eval_dir / "metrics.json", eval_dir / "report.json", root / "artifacts" / "registry.json"]:
        assert_no_demo(path.read_text(), str(path))
    assert_no_demo(card, "the model card")

    assert outputs["registered_model"] == "acme-reranker version 1"
    assert outputs["promotion"].startswith("champion (first version")
    mlflow.set_tracking_uri(outputs["mlflow_tracking_uri"])
    client = MlflowClient()
    assert [model.name for model in client.search_registered_models()] == ["acme-reranker"]
    run = client.get_run(outputs["mlflow_run_id"])
    assert "acme_lists_test_ndcg_at_10" in run.data.metrics
    # What ships was chosen on the dev split, is what was evaluated and registered, and is what the gate compared.
    choice = json.loads((root / "artifacts" / "dev" / "package.json").read_text())
    assert set(choice["shares"]) == {"0.0", "0.5"} and report["shipped"]["kind"] == choice["shipped"]
    assert run.data.params["package.first_stage"] == "bi-encoder" and "package_share" in run.data.metrics
    assert "component_cross_encoder_acme_lists_test_ndcg_at_10" in run.data.metrics
    version = client.get_model_version("acme-reranker", "1")
    assert float(version.tags["eval.primary_score"]) == metrics["metrics"]["acme_lists_test_ndcg@10"]
    assert json.loads(version.tags["model.shipped"])["kind"] == choice["shipped"]
    assert_no_demo(json.dumps(run.data.metrics) + json.dumps(run.data.params), "the MLflow run")

    # The same profile under DVC: dvc.yaml is written from it, `dvc repro` runs every stage, then nothing is stale.
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    assert main(["--root", str(root), "--profile", "profiles/acme.yaml", "dvc-yaml"]) == 0
    assert_no_demo((root / "dvc.yaml").read_text(), "dvc.yaml")
    assert str(collection.pairs_csv) in yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["prepare"]["deps"]
    for command in (["dvc", "repro"], ["dvc", "status", "dvc.yaml"]):  # the demo's raw-data pointers are not pulled
        done = subprocess.run(command, cwd=root, env=env_with_venv(), capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert "up to date" in done.stdout
    record = json.loads((root / "artifacts" / "registry.json").read_text())
    assert record["model_name"] == "acme-reranker" and record["decision"] in {"champion", "challenger", "unchanged"}
    assert "acme_lists_test_ndcg@10" in record["compared"] or record["decision"] == "unchanged"
    assert set(json.loads((eval_dir / "metrics.json").read_text())["metrics"]) == names
