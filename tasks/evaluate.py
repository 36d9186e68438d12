"""Stage `evaluate`: rerank the WikiQA test questions with the trained model and write metrics.json."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import mlflow

from rerank_lib import CrossEncoder
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from tasks.config import EvaluateConfig, TrackingConfig
from tasks.io import file_md5, write_json_atomic
from tasks.prepare import TEST_FILE, load_test_samples
from tasks.tracking import RUN_ID_ENV, mlflow_metric_name, use_tracking
from tasks.train import SUMMARY_FILE

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "wikiqa_test"


@dataclass(frozen=True)
class EvaluateResult:
    metrics_path: Path
    metrics: dict[str, float]
    primary_metric: str


def pipeline_run_id(model_dir: Path) -> str | None:
    """The MLflow run of this pipeline run: from the flow's environment or the training summary."""
    summary = Path(model_dir) / SUMMARY_FILE
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    if summary.is_file():
        return json.loads(summary.read_text(encoding="utf-8")).get("mlflow_run_id")
    return None


def run_evaluate(
    cfg: EvaluateConfig, tracking: TrackingConfig, model_dir: Path, prepared: Path, out: Path, root: Path
) -> EvaluateResult:
    """Score every candidate of each test question, compute MAP, MRR@k and NDCG@k, log them to the run."""
    samples = load_test_samples(prepared)
    model = CrossEncoder(model_dir)
    evaluator = CrossEncoderRerankingEvaluator(
        samples, at_k=cfg.at_k, name=EVALUATOR_NAME, batch_size=cfg.batch_size, show_progress_bar=True
    )
    out = Path(out)
    metrics = {key: float(value) for key, value in evaluator(model, output_path=str(out / "details")).items()}
    write_json_atomic(
        out / "metrics.json",
        {
            "metrics": metrics,
            "primary_metric": evaluator.primary_metric,
            "queries": len(samples),
            "data_hash": file_md5(Path(prepared) / TEST_FILE),
            "evaluators": {EVALUATOR_NAME: {"class": type(evaluator).__name__, **evaluator.get_config_dict()}},
        },
    )
    run_id = pipeline_run_id(model_dir)
    if run_id:
        use_tracking(tracking.tracking_uri, tracking.experiment, root)
        client = mlflow.MlflowClient()
        for key, value in metrics.items():
            client.log_metric(run_id, mlflow_metric_name(key), value)
    logger.info("Evaluation on %d queries: %s", len(samples), metrics)
    return EvaluateResult(out / "metrics.json", metrics, evaluator.primary_metric)
