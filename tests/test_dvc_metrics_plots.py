"""`dvc metrics show` and `dvc plots show` on the pipeline's outputs (the shared project of tests/dvc_support.py).

dvc.yaml declares ``artifacts/eval/metrics.json`` as metrics, and as plots the training loss per logged step
(``artifacts/trained/training_log.csv``) and the metrics of evaluation during training (``eval_log.csv``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.dvc_support import MAX_STEPS, ResumedProject, dvc, dvc_json, resumed_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ResumedProject:
    return resumed_project(tmp_path_factory)


def test_dvc_metrics_show_reports_the_evaluation_metrics(project: ResumedProject) -> None:
    written = json.loads((project.root / "artifacts" / "eval" / "metrics.json").read_text())
    report = json.loads((project.root / "artifacts" / "eval" / "report.json").read_text())
    primary = report["primary_metric"]
    assert primary == "wikiqa_test_ndcg@10" and report["evaluators"]["wikiqa_test"]["samples"] == 20

    shown = dvc_json(project.root, "metrics", "show", "--json")
    (workspace,) = shown.values()  # one revision: the workspace
    data = workspace["data"]["artifacts/eval/metrics.json"]["data"]
    assert data["metrics"][primary] == pytest.approx(written["metrics"][primary])
    assert 0.0 <= data["metrics"][primary] <= 1.0
    assert data["baselines"]["bm25"][primary] == pytest.approx(written["baselines"]["bm25"][primary])

    def leaves(node: object) -> list[object]:
        return [v for child in node.values() for v in leaves(child)] if isinstance(node, dict) else [node]

    assert all(isinstance(value, float) for value in leaves(data))  # numbers only: no strings in the table


def test_dvc_plots_show_renders_the_training_loss(project: ResumedProject, tmp_path: Path) -> None:
    log = pd.read_csv(project.root / "artifacts" / "trained" / "training_log.csv")
    assert len(log) >= 2

    shown = dvc_json(project.root, "plots", "show", "--json")
    assert not shown.get("errors"), shown.get("errors")
    (plot,) = shown["data"]["training loss"]
    assert plot["type"] == "vega"
    assert plot["content"]["encoding"]["x"]["field"] == "step"
    values = plot["content"]["data"]["values"]
    assert [int(v["step"]) for v in values] == log["step"].tolist()
    assert [float(v["loss"]) for v in values] == pytest.approx(log["loss"].tolist())

    out = tmp_path / "plots"
    dvc(project.root, "plots", "show", "-o", str(out))
    page = (out / "index.html").read_text()
    assert "training loss" in page and "vega" in page


def test_dvc_plots_show_renders_the_evaluation_curves_of_the_resumed_run(project: ResumedProject) -> None:
    log = pd.read_csv(project.root / "artifacts" / "trained" / "eval_log.csv")
    every = project.summary["hyperparameters"]["evaluation"]["steps"]
    # Evaluations before the SIGKILL come back from the checkpoint's state: each step once, none lost.
    assert log["step"].tolist() == list(range(every, MAX_STEPS + 1, every))
    assert log["ndcg_at_10"].between(0, 1).all()

    shown = dvc_json(project.root, "plots", "show", "--json")
    assert not shown.get("errors"), shown.get("errors")
    (plot,) = shown["data"]["evaluation during training"]
    # One line per declared column, told apart by dash pattern: the model's metrics and BM25's.
    lines = plot["content"]["encoding"]["strokeDash"]["scale"]["domain"]
    assert sorted(lines) == ["bm25_ndcg_at_10", "map", "mrr_at_10", "ndcg_at_10"]
    values = plot["content"]["data"]["values"]
    ndcg = {int(v["step"]): float(v["dvc_inferred_y_value"]) for v in values if v["field"] == "ndcg_at_10"}
    assert ndcg == pytest.approx(dict(zip(log["step"].tolist(), log["ndcg_at_10"].tolist(), strict=True)))


def test_the_repro_evaluated_the_model_beside_both_baselines_and_registered_it(project: ResumedProject) -> None:
    root = project.root
    metrics = json.loads((root / "artifacts" / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["wikiqa_test_ndcg@10"] <= 1.0
    # Both baselines sit beside our numbers under the same keys: BM25 over the candidates, and the bi-encoder (the
    # first stage, so its numbers equal the reranking evaluator's base_* metrics).
    baselines = metrics["baselines"]
    for metric in ("map", "mrr@10", "ndcg@10"):
        assert 0.0 < baselines["bm25"][f"wikiqa_test_{metric}"] <= 1.0
        assert baselines["bi_encoder"][f"wikiqa_test_{metric}"] == metrics["metrics"][f"wikiqa_test_base_{metric}"]
    assert baselines["bm25"]["wikiqa_test_ndcg@10"] != baselines["bi_encoder"]["wikiqa_test_ndcg@10"]
    assert (root / "artifacts" / "model" / "README.md").is_file()
    assert int(json.loads((root / "artifacts" / "registry.json").read_text())["model_version"]) >= 1
