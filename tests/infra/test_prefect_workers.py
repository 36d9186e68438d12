"""Retraining run by a real Prefect worker, from the deployment file that infra/ documents.

On loopback: `prefect server start`, `prefect work-pool create rerank-local --type process`, `prefect deploy
--prefect-file infra/prefect/prefect.yaml --name retrain-local` from a copy of the checkout, and `prefect worker
start` in it. Two runs are triggered through the API at once; the deployment's concurrency limit (1, ENQUEUE) makes
one wait until the other has finished, and both end as registered model versions. The runs use the quick profile
with two training steps (the worker and the orchestration are under test here, not the model).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.e2e_support import copy_project, link_raw_data
from tests.server_support import group_gone, prefect_server, start, stop, tail, wait_healthy

pytestmark = pytest.mark.slow

RUNS_SECONDS = 900
PARAMETERS = {"profile": "quick", "overrides": {"train": {"max_steps": 2}, "evaluate": {"max_queries": 8}}}


def prefect_cli(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    command = [str(Path(sys.executable).parent / "prefect"), *args]
    with log.open("ab") as handle:
        result = subprocess.run(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=300)
    assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{tail(log)}"


def wait_final(client: object, run_ids: list, worker_log: Path) -> list[FlowRun]:
    deadline = time.monotonic() + RUNS_SECONDS
    while True:
        runs = [client.read_flow_run(run_id) for run_id in run_ids]
        if all(run.state is not None and run.state.is_final() for run in runs):
            return runs
        assert time.monotonic() < deadline, f"runs not finished: {[r.state for r in runs]}\n{tail(worker_log)}"
        time.sleep(2)


def test_a_process_worker_runs_the_local_deployment_one_run_at_a_time(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "checkout")
    link_raw_data(root)
    # A refused run retries after 3 s instead of 30, so the waiting run starts soon after the first one ends.
    server, api_url, env = prefect_server(tmp_path, {"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "3"})
    env |= {"RERANK_PROJECT_ROOT": str(root), "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_CLI_PROMPT": "false"}
    worker = None
    try:
        wait_healthy([server])
        prefect_cli(["work-pool", "create", "rerank-local", "--type", "process"], root, env, tmp_path / "cli.log")
        deploy = ["deploy", "--prefect-file", "infra/prefect/prefect.yaml", "--name", "retrain-local"]
        prefect_cli(deploy, root, env, tmp_path / "cli.log")
        worker_command = [str(Path(sys.executable).parent / "prefect"), "worker", "start"]
        worker_command += ["--pool", "rerank-local", "--type", "process"]
        worker = start("prefect worker", worker_command, env, "", tmp_path / "worker.log", cwd=tmp_path)

        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("retrain-reranker/retrain-local")
            assert deployment.global_concurrency_limit is not None
            assert deployment.global_concurrency_limit.limit == 1
            ids = [client.create_flow_run_from_deployment(deployment.id, parameters=PARAMETERS).id for _ in range(2)]
            runs = wait_final(client, ids, tmp_path / "worker.log")
            histories = {run.id: [state.name for state in client.read_flow_run_states(run.id)] for run in runs}
        assert worker.process.poll() is None, tail(tmp_path / "worker.log")
    finally:
        for process in filter(None, [worker, server]):
            stop(process)
    for process in filter(None, [worker, server]):
        assert group_gone(process.process.pid), f"{process.name} left processes behind"

    assert [run.state.name for run in runs] == ["Completed", "Completed"], f"{histories}\n{tail(worker.log, 8000)}"
    assert all(run.work_pool_name == "rerank-local" and run.infrastructure_pid for run in runs)  # the worker ran them
    waited = [run for run in runs if "AwaitingConcurrencySlot" in histories[run.id]]
    assert len(waited) == 1, histories  # one run was held back by the limit ...
    first = next(run for run in runs if run.id != waited[0].id)
    assert waited[0].start_time >= first.end_time  # ... and started only after the other had finished

    record = json.loads((root / "artifacts" / "registry.json").read_text())
    client = MlflowClient(tracking_uri=record["tracking_uri"], registry_uri=record["tracking_uri"])
    assert record["tracking_uri"] == f"sqlite:///{root / 'mlflow.db'}"  # params.yaml's MLflow, in the checkout
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{record['model_name']}'"))
    assert versions == ["1", "2"]
    assert str(client.get_model_version_by_alias(record["model_name"], "champion").version) in versions
