"""A tune study in MLflow: one parent run per study, one child run per trial.

The parent (``tune-<study>``) holds the tune section, the baselines' dev numbers, each finished trial's objective as a
curve (step = trial number) and, at the end, the best trial and ``best.yaml``. A child (``trial-<n>``) holds the
trial's values and full params, its training curves (loss and the in-training dev objective) and its dev metrics;
its status says how it ended (finished, pruned: KILLED with ``tune.state`` pruned, failed). The parent's id is kept
in the study, so a resumed study keeps adding to the same parent.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from tasks.tracking import flatten, mlflow_metric_name, use_tracking

PARENT_ATTR = "mlflow_parent_run_id"
EARLIER_PARENT_TAG = "tune.earlier_parent_run"  # on a parent started because the study's first one was not found
STUDY_TAG = "rerank.tune.study"
logger = logging.getLogger(__name__)


def parent_run(study: optuna.Study, tracking: Any, tune: Any, root: Path) -> str:
    """The study's parent run: created with the study, found again when it resumes.

    A study resumed where its parent run is not (the study's storage moved to another tracking server, or the MLflow
    database was reset) gets a new parent, tagged with the old one's id, rather than failing before any trial.
    """
    experiment_id = use_tracking(tracking.tracking_uri, tracking.experiment, root)
    client = mlflow.MlflowClient()
    earlier = study.user_attrs.get(PARENT_ATTR)
    if earlier and run_status(client, earlier) is not None:
        client.update_run(earlier, status="RUNNING")
        return earlier
    tags = {MLFLOW_RUN_NAME: f"tune-{study.study_name}", STUDY_TAG: study.study_name}
    if earlier:
        tags[EARLIER_PARENT_TAG] = earlier
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    params = [Param(key, str(value)[:500]) for key, value in flatten(tune.model_dump(mode="json"), "tune.").items()]
    client.log_batch(run_id, params=params)
    study.set_user_attr(PARENT_ATTR, run_id)
    if earlier:
        logger.warning(
            "Study %s: its MLflow parent run %s is not in %s; its trials from now on go under a new parent run, %s.",
            study.study_name,
            earlier,
            mlflow.get_tracking_uri(),
            run_id,
        )
    return run_id


def run_status(client: mlflow.MlflowClient, run_id: str) -> str | None:
    """The run's status (RUNNING, FINISHED, ...); None where the tracking store does not have it or it was deleted."""
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return run.info.status if run.info.lifecycle_stage == "active" else None


def log_baselines(run_id: str, baselines: dict[str, dict[str, float]]) -> None:
    metrics = [
        Metric(mlflow_metric_name(f"baseline_{which}_{key}"), value, 0, 0)
        for which, values in baselines.items()
        for key, value in values.items()
    ]
    mlflow.MlflowClient().log_batch(run_id, metrics=metrics)


def child_run(parent_id: str, trial: optuna.Trial, values: dict[str, Any], params: dict[str, Any]) -> str:
    """A trial's run under the parent, with its sampled values and the params it trains with."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    tags = {
        MLFLOW_PARENT_RUN_ID: parent_id,
        MLFLOW_RUN_NAME: f"trial-{trial.number}",
        STUDY_TAG: parent.data.tags.get(STUDY_TAG, ""),
        "tune.trial": str(trial.number),
    }
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    retry_of = frozen.system_attrs.get("failed_trial")
    if retry_of is not None:
        tags["tune.retry_of"] = str(retry_of)
        close_dead_run(trial.study, retry_of, trial.number)
    run_id = client.create_run(parent.info.experiment_id, tags=tags).info.run_id
    logged = {f"trial.{key}": value for key, value in values.items()}
    logged |= {key: value for key, value in flatten(params).items() if key.split(".")[0] in ("prepare", "train")}
    client.log_batch(run_id, params=[Param(key[:250], str(value)[:500]) for key, value in logged.items()])
    return run_id


def close_dead_run(study: optuna.Study, number: int, retry: int) -> None:
    """The run of a trial whose process died stays RUNNING; its retry closes it as KILLED and says where it went."""
    dead = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    run_id = dead.user_attrs.get("mlflow_run_id") if dead is not None else None
    if run_id and run_status(mlflow.MlflowClient(), run_id) == "RUNNING":  # None: in another tracking store
        end_child(run_id, "died", tags={"tune.retried_as": str(retry)})


def end_child(
    run_id: str, state: str, metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None
) -> None:
    """Close a trial's run: ``complete`` (FINISHED), ``pruned`` or ``died`` (KILLED), ``failed`` (FAILED)."""
    client = mlflow.MlflowClient()
    batch_metrics = [Metric(mlflow_metric_name(key), float(value), 0, 0) for key, value in (metrics or {}).items()]
    batch_tags = [RunTag("tune.state", state), *(RunTag(key, value) for key, value in (tags or {}).items())]
    client.log_batch(run_id, metrics=batch_metrics, tags=batch_tags)
    client.set_terminated(run_id, {"complete": "FINISHED", "pruned": "KILLED", "died": "KILLED"}.get(state, "FAILED"))


def log_trial_on_parent(parent_id: str, number: int, objective: float) -> None:
    mlflow.MlflowClient().log_metric(parent_id, "trial_objective", objective, step=number)


def end_parent(parent_id: str, best: optuna.trial.FrozenTrial | None, files: list[Path], complete: bool) -> None:
    """The best trial's number, objective and dev metrics on the parent; ``best.yaml`` as an artifact."""
    client = mlflow.MlflowClient()
    if best is not None:
        client.log_metric(parent_id, "best_objective", float(best.value))
        client.set_tag(parent_id, "tune.best_trial", str(best.number))
        for key, value in (best.user_attrs.get("metrics") or {}).items():
            client.log_metric(parent_id, mlflow_metric_name(f"best_{key}"), float(value))
    for path in files:
        if path.is_file():
            client.log_artifact(parent_id, str(path), artifact_path="tune")
    client.set_terminated(parent_id, "FINISHED" if complete else "KILLED")
