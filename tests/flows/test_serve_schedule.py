"""`rerank serve` schedules for real: without a configured Prefect server it starts a local one whose scheduler
creates the cron runs, runs them, and stops it on exit; `flows.serve.serve` alone refuses Prefect's ephemeral mode,
which has no scheduler."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.serve import DEPLOYMENT_NAME, NoSchedulerError, serve
from tasks.config import merged_params_dict
from tests.e2e_support import PROJECT, link_raw_data
from tests.server_support import clean_env, group_gone, port_closed, start, stop, tail

SCHEDULED_RUN_SECONDS = 480
STARTED = re.compile(r"Started a local Prefect server \(pid (\d+)\) for the schedule: (http://127\.0\.0\.1:(\d+))")


def test_serving_without_a_prefect_server_is_refused_at_once() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}), pytest.raises(NoSchedulerError) as raised:
        serve(root=str(PROJECT))
    assert "prefect server start" in str(raised.value) and "rerank serve" in str(raised.value)


def wait_for_log(pattern: re.Pattern, log: Path, process: object, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while not (found := pattern.search(log.read_text(errors="replace"))):
        assert process.poll() is None, f"`rerank serve` exited:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no local Prefect server after {timeout:.0f}s:\n{tail(log)}"
        time.sleep(0.5)
    return found


@pytest.mark.slow
def test_rerank_serve_starts_a_scheduler_that_runs_the_cron_schedule(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    params = merged_params_dict(PROJECT / "params.yaml", profile="quick")
    params["schedule"] = {"cron": "* * * * *", "timezone": "UTC"}  # due within a minute
    params["train"]["max_steps"] = 2  # the schedule is under test here, not the model
    params["evaluate"]["max_queries"] = 8
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    link_raw_data(root)
    env = {**clean_env(), "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "2"
    log = tmp_path / "serve.log"
    command = [str(Path(sys.executable).parent / "rerank"), "--root", str(root), "serve"]
    served = start("rerank serve", command, env, "", log, cwd=tmp_path)
    server_pid = port = 0
    try:
        started = wait_for_log(STARTED, log, served.process, 180)
        server_pid, api_url, port = int(started[1]), f"{started[2]}/api", int(started[3])
        assert (root / ".prefect" / "server.log").is_file()  # the server's home is the project's .prefect/

        deadline = time.monotonic() + SCHEDULED_RUN_SECONDS
        names = DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT_NAME]))
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            while True:
                runs = client.read_flow_runs(deployment_filter=names)
                finished = [run for run in runs if run.state is not None and run.state.is_final()]
                if finished:
                    break
                assert served.process.poll() is None, f"`rerank serve` exited:\n{tail(log)}"
                assert time.monotonic() < deadline, f"no scheduled run finished: {runs}\n{tail(log, 8000)}"
                time.sleep(2)
        run = finished[0]
        assert run.auto_scheduled  # created by the server's scheduler from the cron, not by hand
        assert run.state.name == "Completed", tail(log, 8000)
        assert run.expected_start_time.second == 0  # on a minute boundary: the cron's time

        registered = json.loads((root / "artifacts" / "registry.json").read_text())
        assert registered["model_version"] == "1"

        os.kill(served.process.pid, signal.SIGTERM)  # as a supervisor stops it
        assert served.process.wait(timeout=90) in (0, 143), tail(log)
    finally:
        stop(served)
    assert group_gone(served.process.pid)
    assert server_pid and group_gone(server_pid), "the local Prefect server outlived `rerank serve`"
    assert port_closed(port)
    assert "Stopped the local Prefect server" in log.read_text(errors="replace")
