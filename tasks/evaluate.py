"""Stage `evaluate`: rerank the WikiQA test questions with the trained model and write metrics.json."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rerank_lib import CrossEncoder
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from tasks.config import EvaluateConfig
from tasks.io import write_json_atomic
from tasks.prepare import load_test_samples

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "wikiqa_test"


@dataclass(frozen=True)
class EvaluateResult:
    metrics_path: Path
    metrics: dict[str, float]
    primary_metric: str


def run_evaluate(cfg: EvaluateConfig, model_dir: Path, prepared: Path, out: Path) -> EvaluateResult:
    """Score every candidate of each test question and compute MAP, MRR@k and NDCG@k."""
    samples = load_test_samples(prepared)
    model = CrossEncoder(model_dir)
    evaluator = CrossEncoderRerankingEvaluator(
        samples, at_k=cfg.at_k, name=EVALUATOR_NAME, batch_size=cfg.batch_size, show_progress_bar=True
    )
    out = Path(out)
    metrics = evaluator(model, output_path=str(out / "details"))
    metrics = {key: float(value) for key, value in metrics.items()}
    write_json_atomic(
        out / "metrics.json",
        {
            "metrics": metrics,
            "primary_metric": evaluator.primary_metric,
            "queries": len(samples),
            "evaluators": {EVALUATOR_NAME: {"class": type(evaluator).__name__, **evaluator.get_config_dict()}},
        },
    )
    logger.info("Evaluation on %d queries: %s", len(samples), metrics)
    return EvaluateResult(out / "metrics.json", metrics, evaluator.primary_metric)
