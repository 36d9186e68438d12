"""Stage `register`: one MLflow run with params, metrics and artifacts, and a new registered model version."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

import rerank_lib
import tasks
from tasks.config import RegisterConfig
from tasks.io import write_json_atomic
from tasks.mlflow_model import MODEL_ARTIFACT

logger = logging.getLogger(__name__)

# MLflow runs this file to build the pyfunc (models from code), so no pickled object is stored.
PYFUNC_CODE = Path(__file__).with_name("mlflow_model_code.py")


@dataclass(frozen=True)
class RegisterResult:
    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str
    tracking_uri: str


def resolve_tracking_uri(uri: str, root: Path) -> str:
    """A relative ``sqlite:///file.db`` is anchored at the project root, so every stage finds the same database."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str((Path(root) / uri[len(prefix) :]).resolve())
    return uri


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


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _experiment_id(name: str, root: Path) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=(Path(root) / "mlartifacts").resolve().as_uri())


def run_register(
    cfg: RegisterConfig,
    params: dict[str, Any],
    model_dir: Path,
    eval_dir: Path,
    root: Path,
    out: Path,
) -> RegisterResult:
    """Log the run and register the model; writes ``out`` (registry.json) with the run id and version."""
    tracking_uri = resolve_tracking_uri(cfg.tracking_uri, root)
    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = _experiment_id(cfg.experiment, root)
    metrics_file = json.loads((Path(eval_dir) / "metrics.json").read_text(encoding="utf-8"))
    manifest_path = Path(root) / "data" / "prepared" / "wikiqa" / "manifest.json"
    tags = {"git_commit": git_commit(root)}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        tags.update({f"data.{name}": digest for name, digest in manifest.get("inputs", {}).items()})

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({key: str(value)[:500] for key, value in flatten(params).items()})
        mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in metrics_file["metrics"].items()})
        mlflow.log_artifacts(str(eval_dir), artifact_path="eval")
        if (Path(model_dir) / "README.md").is_file():
            mlflow.log_artifact(str(Path(model_dir) / "README.md"), artifact_path="card")
        for extra in ("params.yaml", "dvc.lock"):
            if (Path(root) / extra).is_file():
                mlflow.log_artifact(str(Path(root) / extra), artifact_path="config")
        example = pd.DataFrame({"query": ["what is a glacier cave?"], "passage": ["A glacier cave is a cave in ice."]})
        signature = infer_signature(example, np.array([0.5], dtype=np.float32))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={MODEL_ARTIFACT: str(model_dir)},
            code_paths=[str(Path(rerank_lib.__file__).parent), str(Path(tasks.__file__).parent)],
            pip_requirements=[f"torch=={version('torch')}", f"transformers=={version('transformers')}"],
            signature=signature,
            input_example=example,
            registered_model_name=cfg.registered_model,
        )
        model_version = str(info.registered_model_version)

    result = RegisterResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_name=cfg.registered_model,
        model_version=model_version,
        model_uri=f"models:/{cfg.registered_model}/{model_version}",
        tracking_uri=tracking_uri,
    )
    write_json_atomic(Path(out), result.__dict__)
    logger.info("MLflow run %s; registered %s version %s", result.run_id, result.model_name, model_version)
    return result
