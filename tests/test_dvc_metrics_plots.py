"""`dvc metrics show` and `dvc plots show` on the pipeline's outputs (the shared project of tests/dvc_support.py).

dvc.yaml declares ``artifacts/eval/metrics.json`` as metrics and the training loss per logged step
(``artifacts/trained/training_log.csv``) as a plot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.dvc_support import ResumedProject, dvc, dvc_json, resumed_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ResumedProject:
    return resumed_project(tmp_path_factory)


def test_dvc_metrics_show_reports_the_evaluation_metrics(project: ResumedProject) -> None:
    written = json.loads((project.root / "artifacts" / "eval" / "metrics.json").read_text())
    primary = written["primary_metric"]
    assert primary == "wikiqa_test_ndcg@10"

    shown = dvc_json(project.root, "metrics", "show", "--json")
    (workspace,) = shown.values()  # one revision: the workspace
    data = workspace["data"]["artifacts/eval/metrics.json"]["data"]
    assert data["primary_metric"] == primary
    assert data["metrics"][primary] == pytest.approx(written["metrics"][primary])
    assert 0.0 <= data["metrics"][primary] <= 1.0
    assert data["queries"] == 40


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
