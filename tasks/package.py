"""Stage `package`: decide on the dev split what ships, and write it with one face.

The trained cross-encoder (``artifacts/trained``) ships either alone, as the plain cross-encoder folder it is, or
inside a package (:mod:`rerank_lib.package`) that mixes a first-stage score into it; :mod:`tasks.package_choice`
decides on ``dev`` which, and at what share. Without a ``dev`` section, or with ``package.first_stage: none``, the
cross-encoder ships alone. Evaluate, card, register and push all take ``artifacts/packaged`` from here, so what is
evaluated is what ships, under one name.

Outputs: ``artifacts/packaged/`` (the folder that ships) and ``artifacts/dev/package.json`` (every share's dev
metrics, objective and guards beside the baselines, and the choice with its reason).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.bi_encoder import BiEncoder
from rerank_lib.errors import ModelLoadError
from rerank_lib.package import write_package
from tasks.base_model import resolve_base_model
from tasks.io import write_json_atomic
from tasks.package_choice import choose_share
from tasks.tracking import RUN_ID_ENV, log_section_params, mlflow_metric_name, use_tracking
from tasks.train import SUMMARY_FILE

logger = logging.getLogger(__name__)

REPORT_FILE = "package.json"
SHIPPED_CROSS_ENCODER = "cross_encoder"
SHIPPED_PACKAGE = "package"


@dataclass(frozen=True)
class PackageResult:
    out_dir: Path
    shipped: str  # "cross_encoder" or "package"
    share: float
    report: Path


def run_package(cfg: Any, trained: Path, prepared: Path, out: Path, report_dir: Path, root: Path) -> PackageResult:
    """Choose on dev what ships, write it to ``out`` and the choice to ``report_dir/package.json``."""
    trained, out = Path(trained), Path(out)
    if not (trained / "config.json").is_file():
        raise ModelLoadError(f"{trained} holds no trained model; run the train stage first (`rerank stage train`).")
    choice = choose_share(cfg, trained, prepared, root) if choosing(cfg) else None
    share = choice.share if choice is not None else 0.0
    if share == 0:
        build_directory_atomic(out, lambda staging: shutil.copytree(trained, staging, dirs_exist_ok=True))
    else:
        assert choice is not None
        spec = choice.spec()
        # The training summary rides along: the pipeline's run id and the card's training facts.
        write_package(out, trained, spec, bi_encoder_source(choice.bi_encoder), extra_files=[trained / SUMMARY_FILE])
    shipped = SHIPPED_PACKAGE if share else SHIPPED_CROSS_ENCODER
    report = {
        "shipped": shipped,
        **(choice.as_dict() if choice is not None else {"share": 0.0, "reason": why_not(cfg)}),
    }
    write_json_atomic(Path(report_dir) / REPORT_FILE, report)
    log_choice(cfg, trained, report, Path(root))
    logger.info("Ships %s (%s)", shipped, report["reason"])
    return PackageResult(out, shipped, share, Path(report_dir) / REPORT_FILE)


def choosing(cfg: Any) -> bool:
    return cfg.dev is not None and cfg.package.first_stage != "none"


def why_not(cfg: Any) -> str:
    if cfg.dev is None:
        return "the cross-encoder alone: params have no dev suite to choose a mix on"
    return "the cross-encoder alone: package.first_stage is none"


def bi_encoder_source(name: str | None) -> str | BiEncoder | None:
    """A local bi-encoder folder is copied whole into the package; anything else is loaded and saved."""
    if name is None:
        return None
    source = resolve_base_model(name)
    return source if Path(source).is_dir() else BiEncoder(source)


def log_choice(cfg: Any, trained: Path, report: dict[str, Any], root: Path) -> None:
    """The choice on the pipeline's MLflow run: the package section, the share, and each share's dev objective."""
    summary = trained / SUMMARY_FILE
    run_id = os.environ.get(RUN_ID_ENV) or (
        json.loads(summary.read_text(encoding="utf-8")).get("mlflow_run_id") if summary.is_file() else None
    )
    if not run_id:
        return
    use_tracking(cfg.tracking.tracking_uri, cfg.tracking.experiment, root)
    client = mlflow.MlflowClient()
    log_section_params(run_id, "package", cfg.package.model_dump(mode="json"))
    client.set_tag(run_id, "rerank.shipped", report["shipped"])
    client.log_metric(run_id, "package_share", float(report["share"]))
    for share, judged in (report.get("shares") or {}).items():
        client.log_metric(run_id, "dev_objective_by_share", judged["objective"], step=int(round(float(share) * 100)))
    chosen = (report.get("shares") or {}).get(str(report["share"]))
    if chosen:
        for metric, value in chosen["metrics"].items():
            client.log_metric(run_id, mlflow_metric_name(f"dev_{metric}"), value)
