"""Stage `evaluate`: the trained model on every evaluator of ``evaluate.suite``, with its baselines beside it.

Outputs in ``artifacts/eval/``:

* ``metrics.json``: numbers only (what `dvc metrics show` prints): ``metrics`` (what ships, the package stage's
  folder: a package or the cross-encoder alone, with each evaluator's first-stage ``<name>_base_*`` numbers),
  ``baselines`` (``bm25`` and ``bi_encoder`` under the model's own keys) and ``components`` (``cross_encoder``: the
  cross-encoder alone, always, so that it and what ships stand side by side);
* ``report.json``: what the numbers mean: each evaluator's kind, data, split, first stage and sample count, the
  evaluation data hash that promotion compares, and what ships (``shipped``);
* ``details/``: each evaluator's CSV.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.fusion import FusedReranker
from rerank_lib.package import RerankPackage, Sigmoid, load_reranker
from tasks.config import EvaluateConfig, TrackingConfig
from tasks.evaluate_backend import choose_backend, remove_view
from tasks.evaluation_suite import BI_ENCODER, BM25, SuiteEvaluator, build_suite
from tasks.io import file_md5, write_json_atomic
from tasks.stored_scorers import project_store, stored_bi_encoder, stored_bm25
from tasks.tracking import RUN_ID_ENV, log_section_params, mlflow_metric_name, use_tracking
from tasks.train import SUMMARY_FILE

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.json"
DETAILS_FOLDER = "details"
CROSS_ENCODER_COMPONENT = "cross_encoder"


@dataclass(frozen=True)
class EvaluateResult:
    metrics_path: Path
    metrics: dict[str, float]
    primary_metric: str


@dataclass
class SuiteResults:
    """Every number of one evaluation: the model, each baseline, each component."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    components: dict[str, dict[str, float]]
    # Per evaluator, every scorer's numbers side by side: {evaluator: {"model" | baseline | component: {...}}}.
    by_evaluator: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def pipeline_run_id(model_dir: Path) -> str | None:
    """The MLflow run of this pipeline run: from the flow's environment or the training summary."""
    summary = Path(model_dir) / SUMMARY_FILE
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    if summary.is_file():
        return json.loads(summary.read_text(encoding="utf-8")).get("mlflow_run_id")
    return None


def evaluation_data_hash(cfg: EvaluateConfig, suite: list[SuiteEvaluator]) -> str:
    """One hash over everything evaluated and how: promotion compares like with like only."""
    # The engine settings leave the numbers as they are (auto keeps fp32 scores within the tolerance); bf16 and int8
    # change them, so precision and quantize stay in the hash.
    engine = {"batch_size", "backend", "backend_tolerance", "backend_auto_min_pairs"}
    digest = hashlib.md5(json.dumps(cfg.model_dump(mode="json", exclude=engine), sort_keys=True).encode())
    for evaluator in suite:
        for path in evaluator.files:
            digest.update(f"{evaluator.name}:{path.name}:{file_md5(path) if path.is_file() else 'missing'};".encode())
    return digest.hexdigest()


def shipped_model(model_dir: Path, options: dict[str, Any], bi_encoder: Any | None) -> tuple[Any, Any]:
    """What ships, scored with the chosen engine, and the cross-encoder alone (for a plain cross-encoder: what ships).

    Scores are cached per pair, so the cross-encoder inside a package and alone, and a first stage that is the
    baseline bi-encoder, are each scored once.
    """
    model = load_reranker(model_dir, **{key: value for key, value in options.items() if value is not None})
    if isinstance(model, RerankPackage):
        model.cross_encoder = CachedScorer(model.cross_encoder)  # the logits, mixed and (as probabilities) alone
        if _same_bi_encoder(bi_encoder, model.first_stage):
            model.first_stage = bi_encoder
        return model, Sigmoid(model.cross_encoder)
    if isinstance(model, FusedReranker):  # a folder saved before packages existed
        model.cross_encoder = CachedScorer(model.cross_encoder)
        if _same_bi_encoder(bi_encoder, model.prior):
            model.prior = bi_encoder
        return model, model.cross_encoder
    cached = CachedScorer(model)
    return cached, cached


def _same_bi_encoder(baseline: Any | None, part: Any) -> bool:
    encoder = getattr(part, "encoder", None)
    return baseline is not None and encoder is not None and baseline.encoder.fingerprint() == encoder.fingerprint()


def shipped(model: Any) -> dict[str, Any]:
    """What report.json says ships: a package (its share and first stage) or the cross-encoder alone."""
    if isinstance(model, RerankPackage):
        spec = model.spec
        return {"kind": "package", "share": spec.share, "first_stage": spec.first_stage, "scale": spec.normalization}
    if isinstance(model, FusedReranker):
        return {"kind": "fused", "share": model.prior_share, "first_stage": "bi-encoder", "scale": "none"}
    return {"kind": "cross_encoder"}


def evaluate_suite(
    suite: list[SuiteEvaluator], model: Any, bi_encoder: Any | None, cross_encoder: Any | None, bm25: Any
) -> SuiteResults:
    """The model on every evaluator, then its baselines and components on the same data."""
    results = SuiteResults({}, {BM25: {}, BI_ENCODER: {}}, {})
    if cross_encoder is not None:
        results.components[CROSS_ENCODER_COMPONENT] = {}
    baseline_scorers = {BM25: bm25, BI_ENCODER: bi_encoder}
    for evaluator in suite:
        logger.info("Evaluating %s (%s)", evaluator.name, evaluator.kind)
        ours = evaluator(model)
        results.metrics.update(ours)
        rows = results.by_evaluator[evaluator.name] = {"model": ours}
        if cross_encoder is not None:
            alone = {k: v for k, v in evaluator(cross_encoder).items() if "_base_" not in k}
            results.components[CROSS_ENCODER_COMPONENT].update(alone)
            rows[CROSS_ENCODER_COMPONENT] = alone
        for which in evaluator.baselines():
            if baseline_scorers[which] is not None:
                rows[which] = evaluator.baseline(which, baseline_scorers[which], ours)
                results.baselines[which].update(rows[which])
        if evaluator.kind == "beir":
            evaluator.samples = sum(evaluator.evaluator.num_queries.values())
    return results


def write_details(folder: Path, results: SuiteResults) -> None:
    """``details/<evaluator>.csv``: one row per scorer (the model, its baselines and components), metrics as columns.

    The folder is replaced whole, so it always holds exactly this evaluation.
    """

    def write(staging: Path) -> None:
        for name, rows in results.by_evaluator.items():
            prefix = f"{name}_"
            table = [
                {"scorer": scorer, **{k.removeprefix(prefix): v for k, v in row.items()}}
                for scorer, row in rows.items()
            ]
            pd.DataFrame(table).to_csv(staging / f"{name}.csv", index=False)

    build_directory_atomic(folder, write)


def report(cfg: EvaluateConfig, suite: list[SuiteEvaluator], model: Any, data_hash: str) -> dict[str, Any]:
    """What metrics.json's numbers mean; the card, the registry and people read it."""
    evaluators = {}
    for evaluator in suite:
        spec = cfg.suite[evaluator.name]
        evaluators[evaluator.name] = {
            "kind": evaluator.kind,
            "class": type(evaluator.evaluator).__name__,
            "title": spec.title or evaluator.details.get("dataset") or Path(evaluator.details["folder"]).name,
            "hub_id": spec.hub_id,
            "first_stage": evaluator.first_stage or None,
            "samples": evaluator.samples,
            "primary_metric": cfg.primary_metric(evaluator.name),
            **evaluator.details,
            "config": evaluator.evaluator.get_config_dict(),
        }
    return {
        "primary_metric": cfg.primary_metric(next(iter(cfg.suite))),
        "data_hash": data_hash,
        "evaluators": evaluators,
        "baselines": {BM25: "BM25 (Okapi, k1 0.9, b 0.4)", BI_ENCODER: cfg.bi_encoder},
        "shipped": shipped(model),
    }


def log_to_run(run_id: str, results: SuiteResults, tracking: TrackingConfig, root: Path) -> None:
    """The model's metrics, ``baseline_<name>_*`` and ``component_<name>_*`` on the pipeline's MLflow run."""
    use_tracking(tracking.tracking_uri, tracking.experiment, root)
    client = mlflow.MlflowClient()
    named = dict(results.metrics)
    for group, prefix in ((results.baselines, "baseline"), (results.components, "component")):
        for name, values in group.items():
            named.update({f"{prefix}_{name}_{key}": value for key, value in values.items()})
    for key, value in named.items():
        client.log_metric(run_id, mlflow_metric_name(key), value)


def run_evaluate(
    cfg: EvaluateConfig,
    tracking: TrackingConfig,
    model_dir: Path,
    prepared: Path,
    out: Path,
    root: Path,
    catalog: dict[str, Any] | None = None,
) -> EvaluateResult:
    """Evaluate the model and its baselines on the suite, write metrics.json and report.json, log to the run.

    ``catalog`` (``prepare.datasets``) resolves ``beir`` evaluators that hold out queries of a catalog entry.
    """
    out = Path(out)
    store = project_store(root)
    bi_encoder = stored_bi_encoder(cfg.bi_encoder, store)
    load_reranker(model_dir)  # a damaged model folder fails here, before any data is read or scored
    bm25 = stored_bm25(store)
    suite = build_suite(cfg, Path(prepared), Path(root), bi_encoder, bm25, catalog)
    pairs = [pair for evaluator in suite for pair in evaluator.pairs()]
    choice, view = choose_backend(cfg, Path(model_dir), pairs[:: max(1, len(pairs) // 1024)], len(pairs))
    try:
        model, cross_encoder = shipped_model(view or Path(model_dir), choice.options(), bi_encoder)
        results = evaluate_suite(suite, model, bi_encoder, cross_encoder, bm25)
    finally:
        remove_view(view)
    write_details(out / DETAILS_FOLDER, results)
    numbers = {"metrics": results.metrics, "baselines": results.baselines, "components": results.components}
    about = report(cfg, suite, model, evaluation_data_hash(cfg, suite)) | {"scoring": choice.as_dict()}
    write_json_atomic(out / REPORT_FILE, about)
    write_json_atomic(out / METRICS_FILE, numbers)
    run_id = pipeline_run_id(model_dir)
    if run_id:
        log_to_run(run_id, results, tracking, Path(root))
        log_section_params(run_id, "evaluate", cfg.model_dump(mode="json"))
        log_section_params(run_id, "evaluate.scoring", {k: v for k, v in choice.options().items() if v is not None})
    logger.info("Evaluation: %s", results.metrics)
    return EvaluateResult(out / METRICS_FILE, results.metrics, cfg.primary_metric(next(iter(cfg.suite))))
