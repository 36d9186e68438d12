"""Against real servers: `prefect server start` and `mlflow server` on loopback ports, started and stopped here.

The flow runs as `rerank run` in a subprocess that only knows the two URLs (PREFECT_API_URL and
``--set tracking.tracking_uri=...``); the test then reads the flow run through the Prefect API and the registered
version and its `champion` alias through the MLflow API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.e2e_support import PROJECT, link_raw_data
from tests.server_support import (
    STARTUP_SECONDS,
    Server,
    clean_env,
    free_port,
    group_gone,
    prefect_server,
    start,
    stop,
    tail,
    wait_healthy,
)

pytestmark = pytest.mark.slow

FLOW_SECONDS = 1500
MODEL = "wikiqa-reranker"


@dataclass(frozen=True)
class Servers:
    prefect_api_url: str
    prefect_home: Path
    mlflow_url: str
    mlflow_db: Path


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """A Prefect server (sqlite under tmp_path) and an MLflow server (sqlite + artifacts under tmp_path)."""
    mlflow_port = free_port()
    mlflow_db = tmp_path / "mlflow-server.db"
    # The job runner (a pool of huey consumers) is not needed for tracking and the registry.
    mlflow_env = {**clean_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port)]
    mlflow_cmd += ["--backend-store-uri", f"sqlite:///{mlflow_db}", "--workers", "1"]
    mlflow_cmd += ["--artifacts-destination", str(tmp_path / "mlflow-artifacts")]

    started: list[Server] = []
    try:
        prefect, prefect_api_url, prefect_env = prefect_server(tmp_path)
        started.append(prefect)
        started.append(
            start(
                "mlflow server", mlflow_cmd, mlflow_env, f"http://127.0.0.1:{mlflow_port}/health", tmp_path / "ml.log"
            )
        )
        wait_healthy(started, STARTUP_SECONDS)
        yield Servers(prefect_api_url, Path(prefect_env["PREFECT_HOME"]), f"http://127.0.0.1:{mlflow_port}", mlflow_db)
    finally:
        for server in started:
            stop(server)
    for server in started:
        assert group_gone(server.process.pid), f"{server.name} left processes behind"


def test_flow_against_real_prefect_and_mlflow_servers(servers: Servers, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(PROJECT / "params.yaml", root / "params.yaml")
    shutil.copytree(PROJECT / "profiles", root / "profiles")  # profiles are read from the project root
    link_raw_data(root)
    env = {**clean_env(), "PREFECT_API_URL": servers.prefect_api_url, "PREFECT_HOME": str(servers.prefect_home)}
    # What `make run PROFILE=quick` runs (shortened), with the tracking URI of the MLflow server for this run only.
    command = [sys.executable, "-m", "rerank_app.cli", "--root", str(root), "--profile", "quick"]
    command += ["--set", f"tracking.tracking_uri={servers.mlflow_url}", "--set", "train.max_steps=2"]
    command += ["--set", "evaluate.max_queries=8", "run"]  # the servers are under test here, not the model
    log = tmp_path / "flow.log"
    with log.open("wb") as handle:
        result = subprocess.run(
            command, cwd=PROJECT, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=FLOW_SECONDS
        )
    assert result.returncode == 0, f"`rerank run` failed:\n{tail(log, 8000)}"
    assert "Retraining finished" in log.read_text(errors="replace")

    # The Prefect server recorded the flow run and every task run, all Completed.
    with temporary_settings(updates={PREFECT_API_URL: servers.prefect_api_url}), get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs()
        assert len(flow_runs) == 1
        flow_run = flow_runs[0]
        assert client.read_flow(flow_run.flow_id).name == "retrain-reranker"
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        assert flow_run.state.name == "Completed"
        task_runs = client.read_task_runs()
    task_states = {run.name.rsplit("-", 1)[0]: run.state.name for run in task_runs if run.flow_run_id == flow_run.id}
    assert task_states == {
        name: "Completed"
        for name in ("open-mlflow-run", "prepare", "train", "package", "evaluate", "card", "register", "push")
    }

    # The MLflow server holds the run, the registered version and the champion alias; nothing went to a local db.
    record = json.loads((root / "artifacts" / "registry.json").read_text())
    assert record["tracking_uri"] == servers.mlflow_url
    assert not (root / "mlflow.db").exists()
    assert servers.mlflow_db.stat().st_size > 0
    client = MlflowClient(tracking_uri=servers.mlflow_url)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == record["model_version"] == "1"
    assert champion.run_id == record["run_id"]
    assert champion.tags["promotion.decision"] == "champion"
    metrics = json.loads((root / "artifacts" / "eval" / "metrics.json").read_text())["metrics"]
    run = client.get_run(record["run_id"])
    assert run.data.metrics["wikiqa_test_ndcg_at_10"] == pytest.approx(metrics["wikiqa_test_ndcg@10"])
    assert any(key.startswith("loss") for key in run.data.metrics)  # per-step metrics from the training subprocess

    # The champion downloads through the server's artifact proxy (no global tracking URI is set), loads and scores.
    # MLflow resolves `models:/` URIs with the process-wide registry URI, whatever tracking_uri says, so the client
    # bound to the server resolves the alias to its artifact location first.
    (tmp_path / "champion").mkdir()
    download_uri = client.get_model_version_download_uri(MODEL, champion.version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=download_uri, tracking_uri=servers.mlflow_url, dst_path=str(tmp_path / "champion")
    )
    model = mlflow.pyfunc.load_model(local)
    # Two candidates of one query, then each alone: whether a cross-encoder or a package ships, a pair's score is its
    # own, in (0, 1).
    question = "how are glacier caves formed?"
    passages = ["A glacier cave is formed in ice.", "The stock market closed higher on Friday."]
    scores = model.predict(pd.DataFrame({"query": [question] * 2, "passage": passages}))
    assert scores.shape == (2,) and 0.0 <= float(scores.min()) < float(scores.max()) <= 1.0
    alone = [float(model.predict(pd.DataFrame({"query": [question], "passage": [p]}))[0]) for p in passages]
    assert alone == pytest.approx(list(map(float, scores)), abs=5e-3)  # up to the noise of padding a batch
