"""The retraining flow: prepare → train → package → evaluate → card → register → push, one Prefect task per stage.

Each task first asks DVC whether its stage changed since dvc.lock recorded it (:mod:`flows.dvc_record`): an unchanged
stage is skipped (the task ends in the state "Skipped", with the reason), a changed one runs and is recorded in
dvc.lock. When nothing changed, the run ends at once as "NothingToRetrain", in Prefect and on its MLflow run. So the
flow and `dvc repro` keep one record, and a scheduled run with nothing new costs seconds.

Run it with ``rerank run``. Prefect runs in its ephemeral local mode unless ``PREFECT_API_URL`` points at a server.
Training runs in a subprocess (:mod:`flows.launch`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import yaml
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from flows.dvc_record import DvcRecord
from flows.launch import launch_training
from rerank_lib.atomic import write_text_atomic
from tasks.config import PipelineConfig, load_params
from tasks.layout import STAGE_ORDER, Layout
from tasks.stages import STAGES
from tasks.tracking import RUN_ID_ENV, start_run

EFFECTIVE_PARAMS = "artifacts/flow_params.yaml"
OUTCOME_TAG = "rerank.outcome"
NOTHING_TO_RETRAIN = "nothing to retrain"
# Per stage: Prefect task options (training's timeout comes from launch.timeout_seconds).
TASK_OPTIONS: dict[str, dict[str, Any]] = {
    "prepare": {"timeout_seconds": 3600},
    "train": {},
    "package": {"timeout_seconds": 3600},
    "evaluate": {"timeout_seconds": 3600},
    "card": {"timeout_seconds": 600},
    "register": {"retries": 3, "retry_delay_seconds": [5, 20, 60], "timeout_seconds": 1800},
    "push": {"retries": 2, "retry_delay_seconds": 30, "timeout_seconds": 3600},
}


@task(name="open-mlflow-run", retries=2, retry_delay_seconds=5, timeout_seconds=120)
def open_run_task(cfg: PipelineConfig, layout: Layout) -> str:
    """Create the pipeline's MLflow run first: an unreachable tracking server fails the flow before training."""
    return start_run(cfg.tracking.tracking_uri, cfg.tracking.experiment, layout.root)


@task(cache_policy=NO_CACHE, persist_result=False)
def stage_task(
    stage: str, cfg: PipelineConfig, layout: Layout, record: DvcRecord | None, run_id: str, params_file: Path
) -> State:
    """Run one stage unless DVC says it is unchanged; record it in dvc.lock when it ran."""
    logger = get_run_logger()
    if record is not None:
        reason = record.changes(stage)
        if reason is None:
            logger.info("Stage %s is unchanged since dvc.lock recorded it: skipped.", stage)
            return Completed(name="Skipped", message=f"{stage}: unchanged since dvc.lock recorded it")
        logger.info("Stage %s runs: %s", stage, reason)
    if stage == "train":
        launch_training(cfg, layout, run_id, params_file, logger)
    else:
        STAGES[stage](cfg, layout)
    if record is not None:
        record.commit(stage)
    return Completed(message=f"{stage}: ran" + (" and recorded in dvc.lock" if record is not None else ""))


@contextlib.contextmanager
def pipeline_run(run_id: str) -> Iterator[None]:
    """Every stage of this flow run logs to its MLflow run, also when training (and its summary) was skipped."""
    before = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = run_id
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = before


@flow(name="retrain-reranker", log_prints=True)
def retrain(
    root: str = ".",
    params_path: str = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Retrain the reranker with params.yaml (plus a profile or per-run overrides); returns where outputs are."""
    layout = Layout(Path(root).resolve())
    cfg = load_params(layout.root / params_path, profile=profile, overrides=overrides)
    params_file = layout.root / EFFECTIVE_PARAMS
    # What was given (params + profile + overrides), not every default spelled out: the training subprocess
    # validates this file again, and some sections reject explicit values that their defaults would fill in.
    write_text_atomic(params_file, yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True), sort_keys=False))
    record = DvcRecord.open(layout.root, cfg, params_path, profile, overrides)
    pending = record.pending() if record is not None else None
    run_id = open_run_task(cfg, layout)
    if pending == {}:
        return nothing_to_retrain(cfg, layout, run_id)
    stages, seconds = {}, {}
    with pipeline_run(run_id):
        for stage in STAGE_ORDER:
            options = dict(TASK_OPTIONS[stage])
            if stage == "train":
                options["timeout_seconds"] = cfg.launch.timeout_seconds + 60
            started = time.perf_counter()
            task_run = stage_task.with_options(name=stage, **options)
            state = task_run(stage, cfg, layout, record, run_id, params_file, return_state=True)
            state.result()  # a failed stage fails the flow here
            seconds[stage] = round(time.perf_counter() - started, 1)
            stages[stage] = "skipped (unchanged)" if state.name == "Skipped" else "ran"
    outputs = flow_outputs(layout, run_id) | {
        "stages": ", ".join(f"{k}: {v}" for k, v in stages.items()),
        "stage_seconds": json.dumps(seconds),
    }
    get_run_logger().info("Outputs: %s", json.dumps(outputs, indent=2))
    return outputs


def nothing_to_retrain(cfg: PipelineConfig, layout: Layout, run_id: str) -> State:
    """End the run early: every stage is as dvc.lock recorded it. Said in Prefect (the state) and MLflow (a tag)."""
    use_run = mlflow.MlflowClient()  # open_run_task pointed MLflow at the tracking URI
    message = "data, code and params are unchanged since the last recorded run (dvc status is clean)"
    use_run.set_tag(run_id, OUTCOME_TAG, NOTHING_TO_RETRAIN)
    use_run.set_tag(run_id, "mlflow.note.content", f"Nothing to retrain: {message}.")
    use_run.set_terminated(run_id)
    get_run_logger().info("Nothing to retrain: %s.", message)
    outputs = flow_outputs(layout, run_id) | {"outcome": f"{NOTHING_TO_RETRAIN}: {message}"}
    return Completed(name="NothingToRetrain", message=f"Nothing to retrain: {message}", data=outputs)


def flow_outputs(layout: Layout, run_id: str) -> dict[str, str]:
    """Where everything is, read from the artifacts the stages left (whether they ran now or before)."""
    registry = _read_json(layout.registry_record)
    push = _read_json(layout.push_record)
    hub = push.get("url") if push.get("pushed") else f"skipped: {push.get('skipped_reason')}"
    return {
        "model": str(layout.model),
        "metrics": str(layout.metrics),
        "card": str(layout.card),
        "mlflow_tracking_uri": str(registry.get("tracking_uri", "")),
        "mlflow_run_id": run_id,
        "registered_model": f"{registry.get('model_name')} version {registry.get('model_version')}",
        "promotion": f"{registry.get('decision')} ({registry.get('reason')})",
        "hub_push": str(hub),
        "outcome": "retrained",
    }


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
