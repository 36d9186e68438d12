"""Stage `register`: complete the pipeline's MLflow run, register the model as a new version, apply the gate.

The run gets params (params flattened), evaluator metrics, artifacts (model card, evaluation CSVs, params.yaml,
dvc.lock) and lineage tags (git commit, dvc.lock hashes of the inputs, data manifest hashes). The model is
logged as a pyfunc wrapping the CrossEncoder and registered; then the promotion gate moves the aliases.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema

import rerank_lib
import tasks
from rerank_lib.errors import ConfigError
from tasks.config import PromoteConfig, RegisterConfig, TrackingConfig
from tasks.evaluate import METRICS_FILE, REPORT_FILE, pipeline_run_id
from tasks.io import tree_md5, write_json_atomic
from tasks.lineage import git_commit
from tasks.mlflow_model import FIRST_STAGE_COLUMN, INFERENCE_OPTIONS, MODEL_ARTIFACT
from tasks.promote import DATA_HASH_TAG, METRIC_TAG, SCORE_TAG, gate
from tasks.tracking import log_section_params, mlflow_metric_name, resolve_tracking_uri, start_run

logger = logging.getLogger(__name__)

# MLflow runs this file to build the pyfunc (models from code), so no pickled object is stored.
PYFUNC_CODE = Path(__file__).with_name("mlflow_model_code.py")
WEIGHTS_TAG = "model.files_md5"
SHIPPED_TAG = "model.shipped"  # what the version scores with: a package (share, first stage) or the cross-encoder alone


@dataclass(frozen=True)
class RegisterResult:
    run_id: str
    model_name: str
    model_version: str
    model_uri: str
    tracking_uri: str
    decision: str
    reason: str
    compared: dict[str, Any] = field(default_factory=dict)  # every number the promotion gate compared


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


def registered_version(client: mlflow.MlflowClient, name: str, run_id: str, weights: str) -> str | None:
    """The version already registered from this run with these weights, if any: registering again is a no-op."""
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except mlflow.exceptions.MlflowException:
        return None  # no such registered model yet
    for candidate in versions:
        if candidate.tags.get(WEIGHTS_TAG) == weights:
            return str(candidate.version)
    return None


def run_register(
    cfg: RegisterConfig,
    tracking: TrackingConfig,
    promote: PromoteConfig,
    model_dir: Path,
    eval_dir: Path,
    prepared: Path,
    root: Path,
    out: Path,
) -> RegisterResult:
    """Log and register the model, apply the promotion gate, and write ``out`` (registry.json).

    The same run's model with the same files is registered once: running the stage again is a no-op that says so.
    """
    root = Path(root)
    metrics_file = json.loads((Path(eval_dir) / METRICS_FILE).read_text(encoding="utf-8"))
    report = json.loads((Path(eval_dir) / REPORT_FILE).read_text(encoding="utf-8"))
    run_id = start_run(tracking.tracking_uri, tracking.experiment, root, pipeline_run_id(model_dir))
    weights = tree_md5(Path(model_dir), leave_out=frozenset({"README.md"}))  # the card may be re-rendered
    client = mlflow.MlflowClient()
    existing = registered_version(client, cfg.registered_model, run_id, weights)
    if existing is not None:
        reason = f"version {existing} already holds this run's model (same files); nothing registered"
        return _record(cfg, tracking, root, out, run_id, existing, "unchanged", reason)
    for section, values in {"register": cfg, "tracking": tracking, "promote": promote}.items():
        log_section_params(run_id, section, values.model_dump(mode="json"))
    model_version = log_and_register(cfg, Path(model_dir), Path(eval_dir), Path(prepared), root, run_id)
    # The version and all its artifacts are stored; only now may the gate move an alias.
    primary = promote.metric or report["primary_metric"]
    if primary not in metrics_file["metrics"]:
        raise ConfigError(f"promote.metric {primary!r} is not in {Path(eval_dir) / METRICS_FILE}; evaluate again.")
    version_tags = {
        SCORE_TAG: str(metrics_file["metrics"][primary]),
        METRIC_TAG: primary,
        DATA_HASH_TAG: str(report.get("data_hash", "")),
        WEIGHTS_TAG: weights,
        SHIPPED_TAG: json.dumps(report.get("shipped") or {"kind": "cross_encoder"}, sort_keys=True),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(cfg.registered_model, model_version, key, value)
    decision = gate(promote, client, cfg.registered_model, model_version, root / "artifacts")
    return _record(
        cfg, tracking, root, out, run_id, model_version, decision.decision, decision.reason, decision.compared
    )


def log_and_register(
    cfg: RegisterConfig,
    model_dir: Path,
    eval_dir: Path,
    prepared: Path,
    root: Path,
    run_id: str,
) -> str:
    """Metrics, artifacts and lineage onto the pipeline's run, then the pyfunc model as a new version."""
    metrics_file = json.loads((eval_dir / METRICS_FILE).read_text(encoding="utf-8"))
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags(lineage_tags(root, prepared))
        mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in metrics_file["metrics"].items()})
        mlflow.log_artifacts(str(eval_dir), artifact_path="eval")
        if (model_dir / "README.md").is_file():
            mlflow.log_artifact(str(model_dir / "README.md"), artifact_path="card")
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
            signature=pyfunc_signature(example),
            input_example=example,
            model_config=INFERENCE_OPTIONS,  # servers may pick another backend at load time
            registered_model_name=cfg.registered_model,
        )
    return str(info.registered_model_version)


def pyfunc_signature(example: pd.DataFrame) -> ModelSignature:
    """(query, passage) strings in, one float score out; ``first_stage_score`` may come too (a package uses it)."""
    signature = infer_signature(example, np.array([0.5], dtype=np.float32))
    inputs = [*signature.inputs.inputs, ColSpec("double", FIRST_STAGE_COLUMN, required=False)]
    return ModelSignature(inputs=Schema(inputs), outputs=signature.outputs)


def _record(
    cfg: RegisterConfig,
    tracking: TrackingConfig,
    root: Path,
    out: Path,
    run_id: str,
    model_version: str,
    decision: str,
    reason: str,
    compared: dict[str, Any] | None = None,
) -> RegisterResult:
    """Write registry.json and log what happened to the version."""
    result = RegisterResult(
        run_id=run_id,
        model_name=cfg.registered_model,
        model_version=model_version,
        model_uri=f"models:/{cfg.registered_model}/{model_version}",
        tracking_uri=resolve_tracking_uri(tracking.tracking_uri, root),
        decision=decision,
        reason=reason,
        compared=compared or {},
    )
    write_json_atomic(Path(out), asdict(result))
    logger.info(
        "MLflow run %s; %s version %s is %s (%s)", run_id, cfg.registered_model, model_version, decision, reason
    )
    return result
