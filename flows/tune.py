"""The tune flow: a study's trials as Prefect tasks, at most ``tune.concurrency`` at a time.

Run it with ``rerank tune``. The flow prepares the data (the retrain flow's prepare task, skipped when DVC records it
unchanged), opens the study (its MLflow
parent run and the baselines' dev numbers), then submits one ``tune-trial`` task per trial still to run; each task
runs one trial in a process of its own (``rerank tune --worker``), so trials never share a torch process and a task
can run wherever a worker runs it. Locally the flow's thread pool runs ``tune.concurrency`` tasks at once; with a
Prefect server and a work pool of several machines, a tag concurrency limit on ``tune-trial`` (``prefect
concurrency-limit create tune-trial N``) bounds them across machines, which then share the study through
``tune.storage`` (a database all of them reach). A last task writes ``best.yaml`` and closes the parent run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from flows.dvc_record import DvcRecord
from flows.launch import run_streaming
from flows.retrain import TASK_OPTIONS, stage_task
from rerank_lib.errors import RerankError
from tasks.config import PipelineConfig, load_params
from tasks.io import write_text_atomic
from tasks.layout import Layout
from tasks.tune import TuneResult, run_tune

TRIAL_TAG = "tune-trial"
FLOW_PARAMS = "flow_params.yaml"


class TrialProcessError(RerankError):
    """A trial's worker process failed; its output tail says why."""


@task(name="open-study", retries=1, retry_delay_seconds=5)
def open_study_task(cfg: PipelineConfig, layout: Layout) -> TuneResult:
    """Create or resume the study, its MLflow parent run and the baselines' dev numbers; run no trial."""
    return run_tune(cfg, layout, max_trials=0, summarize=False)


@task(name="tune-trial", tags=[TRIAL_TAG], cache_policy=None, persist_result=False)
def trial_task(layout: Layout, params_file: Path, slot: int, timeout: float) -> None:
    """One trial, in a worker process of its own; the study decides which values it trains."""
    command = [sys.executable, "-m", "rerank_app.cli", "--root", str(layout.root), "--params", str(params_file)]
    returncode, tail = run_streaming([*command, "tune", "--worker"], layout.root, dict(os.environ), timeout)
    if returncode != 0:
        raise TrialProcessError(f"Trial worker {slot} exited with code {returncode}:\n{tail}")


@task(name="tune-result")
def result_task(cfg: PipelineConfig, layout: Layout) -> TuneResult:
    """best.yaml and best.json from the study, and the parent run closed with the best trial."""
    return run_tune(cfg, layout, max_trials=0, summarize=True)


@flow(name="tune-recipe", log_prints=True)
def tune(
    root: str = ".",
    params_path: str = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the study of params' ``tune`` section to its ``tune.trials``; returns where the result is."""
    layout = Layout(Path(root).resolve())
    cfg = load_params(layout.root / params_path, profile=profile, overrides=overrides)
    params_file = layout.tune_dir / FLOW_PARAMS  # what every worker reads: params + profile + overrides
    write_text_atomic(params_file, yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True), sort_keys=False))
    # Prepare as the retrain flow does: skipped when dvc.lock records the prepared data as it is, else run and recorded.
    record = DvcRecord.open(layout.root, cfg, params_path, profile, overrides)
    prepare = stage_task.with_options(name="prepare", **TASK_OPTIONS["prepare"])
    prepare("prepare", cfg, layout, record, "", params_file, return_state=True).result()
    opened = open_study_task(cfg, layout)
    timeout = cfg.launch.timeout_seconds + 600  # a trial trains (and is judged) once, like the train stage
    remaining = max(opened.trials_planned - opened.trials_finished, 0)
    futures = [trial_task.submit(layout, params_file, slot, timeout) for slot in range(remaining)]
    for future in futures:
        future.result()
    result = result_task(cfg, layout)
    return {
        "study": result.study,
        "storage": result.storage,
        "trials": f"{result.trials_finished} of {result.trials_planned}",
        "best_trial": result.best_trial,
        "best_objective": result.best_objective,
        "best": [str(path) for path in result.files],
    }


def run_tune_flow(
    root: str, params_path: str, profile: str | None, overrides: dict[str, Any] | None, concurrency: int
) -> dict[str, Any]:
    """The flow with a thread pool of ``concurrency`` (params' ``tune.concurrency``) for its trial tasks."""
    runner = ThreadPoolTaskRunner(max_workers=concurrency)
    return tune.with_options(task_runner=runner)(
        root=root, params_path=params_path, profile=profile, overrides=overrides
    )
