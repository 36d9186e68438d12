"""MLflow tracking shared by the stages: one run per pipeline run, attached to by every stage.

The run id travels through ``RERANK_MLFLOW_RUN_ID`` (set by the flow) or through the training summary
(written by the train stage), so `dvc repro` and the Prefect flow both end up with a single run.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Param
from transformers import TrainerCallback

from rerank_lib.errors import RerankError

logger = logging.getLogger(__name__)

RUN_ID_ENV = "RERANK_MLFLOW_RUN_ID"


class TrackingUnavailableError(RerankError):
    """The MLflow tracking server cannot be reached; nothing expensive has started yet."""


def resolve_tracking_uri(uri: str, root: Path) -> str:
    """A relative ``sqlite:///file.db`` is anchored at the project root, so every stage finds the same database.

    params.yaml (or ``--set tracking.tracking_uri=...``) decides; ``MLFLOW_TRACKING_URI`` is not consulted, since
    MLflow itself sets it in-process and a stale value would send runs to another server.
    """
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str((Path(root) / uri[len(prefix) :]).resolve())
    return uri


def redact_uri(uri: str) -> str:
    """The URI without user:password, for messages and logs."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def check_tracking_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail at once, naming the URI, when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status >= 500:
                raise TrackingUnavailableError(f"MLflow tracking server {redact_uri(uri)} answered {response.status}.")
    except (urllib.error.URLError, OSError) as error:
        raise TrackingUnavailableError(
            f"MLflow tracking server {redact_uri(uri)} is unreachable ({error}). Start it or set "
            "tracking.tracking_uri; trained models stay on disk and `rerank stage register` can finish later."
        ) from error


def use_tracking(uri: str, experiment: str, root: Path) -> str:
    """Point MLflow at the tracking URI and experiment (created with artifacts under the project); returns its id."""
    resolved = resolve_tracking_uri(uri, root)
    check_tracking_reachable(resolved)
    mlflow.set_tracking_uri(resolved)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if resolved.startswith("sqlite:"):
        location = (Path(root) / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(experiment, artifact_location=location)


def is_main_process() -> bool:
    """Rank 0 under torchrun / accelerate (or a plain process): the one that talks to MLflow."""
    return int(os.environ.get("RANK", "0")) == 0


def start_run(uri: str, experiment: str, root: Path, run_id: str | None = None) -> str:
    """Create (or look up) the pipeline's MLflow run and return its id, without leaving it active."""
    experiment_id = use_tracking(uri, experiment, root)
    run_id = run_id or os.environ.get(RUN_ID_ENV)
    if run_id:
        return mlflow.get_run(run_id).info.run_id
    run = mlflow.MlflowClient().create_run(experiment_id)
    return run.info.run_id


def mlflow_metric_name(name: str) -> str:
    """MLflow metric names allow letters, digits, ``_-./`` and spaces: ``ndcg@10`` becomes ``ndcg_at_10``."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name.replace("@", "_at_"))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_section_params(run_id: str, section: str, values: dict[str, Any]) -> None:
    """One params section as ``<section>.<key>`` run params: each stage records the section it reads.

    A key already on the run (a resumed or repeated stage) is left as it is; MLflow params cannot change.
    """
    client = mlflow.MlflowClient()
    logged = client.get_run(run_id).data.params
    flat = {name: str(value)[:500] for name, value in flatten(values, f"{section}.").items()}
    new = [Param(name, value) for name, value in flat.items() if name not in logged]
    if new:
        client.log_batch(run_id, params=new)


class MlflowStepMetricsCallback(TrainerCallback):
    """Logs each training/evaluation log line to an MLflow run as step metrics (names made valid for MLflow)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.client = mlflow.MlflowClient()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.client.log_metric(self.run_id, mlflow_metric_name(key), float(value), step=state.global_step)
