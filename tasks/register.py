"""Stage `register`: complete the pipeline's MLflow run, register the model as a new version, apply the gate.

The run gets params (params flattened), evaluator metrics, artifacts (model card, evaluation CSVs, params.yaml,
dvc.lock) and lineage tags (git commit, dvc.lock hashes of the inputs, data manifest hashes). The model is
logged as a pyfunc wrapping the CrossEncoder and registered; then the promotion gate moves the aliases.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.models import infer_signature

import rerank_lib
import tasks
from tasks.config import PromoteConfig, RegisterConfig, TrackingConfig
from tasks.evaluate import pipeline_run_id
from tasks.io import write_json_atomic
from tasks.lineage import git_commit
from tasks.mlflow_model import INFERENCE_OPTIONS, MODEL_ARTIFACT
from tasks.promote import DATA_HASH_TAG, METRIC_TAG, SCORE_TAG, gate
from tasks.tracking import flatten, mlflow_metric_name, resolve_tracking_uri, start_run

logger = logging.getLogger(__name__)

# MLflow runs this file to build the pyfunc (models from code), so no pickled object is stored.
PYFUNC_CODE = Path(__file__).with_name("mlflow_model_code.py")


@dataclass(frozen=True)
class RegisterResult:
    run_id: str
    model_name: str
    model_version: str
    model_uri: str
    tracking_uri: str
    decision: str
    reason: str


def lineage_tags(root: Path, prepared: Path) -> dict[str, str]:
    """Git commit, the dvc.lock hashes of every stage input, and the prepared data's hashes."""
    tags = {"git_commit": git_commit(root)}
    lock = Path(root) / "dvc.lock"
    if lock.is_file():
        stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
        for stage in stages.values():
            for dep in stage.get("deps", []):
                tags[f"dvc.{dep['path']}"] = str(dep.get("md5", dep.get("hash", "")))
    for manifest_path in sorted(Path(prepared).glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        dataset = manifest_path.parent.name
        for name, digest in (manifest.get("outputs") or {}).items():
            tags[f"data.{dataset}.{name}"] = str(digest)
    return tags


def run_register(
    cfg: RegisterConfig,
    tracking: TrackingConfig,
    promote: PromoteConfig,
    params: dict[str, Any],
    model_dir: Path,
    eval_dir: Path,
    prepared: Path,
    root: Path,
    out: Path,
) -> RegisterResult:
    """Log and register the model, apply the promotion gate, and write ``out`` (registry.json)."""
    root = Path(root)
    metrics_file = json.loads((Path(eval_dir) / "metrics.json").read_text(encoding="utf-8"))
    run_id = start_run(tracking.tracking_uri, tracking.experiment, root, pipeline_run_id(model_dir))
    primary = metrics_file["primary_metric"]

    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags(lineage_tags(root, prepared))
        mlflow.log_params({key: str(value)[:500] for key, value in flatten(params).items()})
        mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in metrics_file["metrics"].items()})
        mlflow.log_artifacts(str(eval_dir), artifact_path="eval")
        if (Path(model_dir) / "README.md").is_file():
            mlflow.log_artifact(str(Path(model_dir) / "README.md"), artifact_path="card")
        for extra in ("params.yaml", "dvc.lock"):
            if (root / extra).is_file():
                mlflow.log_artifact(str(root / extra), artifact_path="config")
        example = pd.DataFrame({"query": ["what is a glacier cave?"], "passage": ["A glacier cave is a cave in ice."]})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={MODEL_ARTIFACT: str(model_dir)},
            code_paths=[str(Path(rerank_lib.__file__).parent), str(Path(tasks.__file__).parent)],
            pip_requirements=[f"torch=={version('torch')}", f"transformers=={version('transformers')}"],
            signature=infer_signature(example, np.array([0.5], dtype=np.float32)),
            input_example=example,
            model_config=INFERENCE_OPTIONS,  # servers may pick another backend at load time
            registered_model_name=cfg.registered_model,
        )
    model_version = str(info.registered_model_version)

    # The version and all its artifacts are stored; only now may the gate move an alias.
    client = mlflow.MlflowClient()
    version_tags = {
        SCORE_TAG: str(metrics_file["metrics"][primary]),
        METRIC_TAG: primary,
        DATA_HASH_TAG: str(metrics_file.get("data_hash", "")),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(cfg.registered_model, model_version, key, value)
    decision = gate(promote, client, cfg.registered_model, model_version, root / "artifacts")

    result = RegisterResult(
        run_id=run_id,
        model_name=cfg.registered_model,
        model_version=model_version,
        model_uri=f"models:/{cfg.registered_model}/{model_version}",
        tracking_uri=resolve_tracking_uri(tracking.tracking_uri, root),
        decision=decision.decision,
        reason=decision.reason,
    )
    write_json_atomic(Path(out), asdict(result))
    logger.info(
        "MLflow run %s; %s version %s is %s (%s)",
        run_id,
        cfg.registered_model,
        model_version,
        decision.decision,
        decision.reason,
    )
    return result
