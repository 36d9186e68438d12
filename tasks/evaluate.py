"""Stage `evaluate`: the trained model against its baselines, on WikiQA test and on local BEIR sets.

* WikiQA test: each question's candidates in the zero-shot bi-encoder's order are the first stage; the reranking
  evaluator's ``base_*`` metrics are that bi-encoder, the others the trained model.
* BEIR (SciFact dev, TREC-DL19): BM25 top-k reranked; ``base_*`` is BM25 alone.

``baselines`` in metrics.json holds both baselines under the model's own metric keys, for every evaluated set:
``bm25`` (BM25 alone; on WikiQA, BM25 over each question's candidates) and ``bi_encoder`` (the zero-shot bi-encoder
ranking the same candidates), so every number of ours has its two reference points beside it. A model saved with a
score fusion (``train.score_fusion``) is evaluated as it ships, fused; ``components.cross_encoder`` then holds the
cross-encoder scored alone, so the fusion's own gain is on record too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from rerank_lib.bi_encoder import BiEncoderScorer
from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.evaluation import CrossEncoderBEIREvaluator, CrossEncoderRerankingEvaluator
from rerank_lib.fusion import FusedReranker, load_reranker
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from tasks.base_model import resolve_base_model
from tasks.config import EvaluateConfig, TrackingConfig
from tasks.io import file_md5, write_json_atomic
from tasks.layout import Layout
from tasks.prepare import TEST_SPLIT, load_test_samples
from tasks.tracking import RUN_ID_ENV, mlflow_metric_name, use_tracking
from tasks.train import SUMMARY_FILE

logger = logging.getLogger(__name__)

WIKIQA_EVALUATOR = "wikiqa_test"
BEIR_EVALUATOR = "beir"
BI_ENCODER_BASELINE = "bi_encoder"
BM25_BASELINE = "bm25"
CROSS_ENCODER_COMPONENT = "cross_encoder"


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


def evaluation_data_hash(cfg: EvaluateConfig, prepared: Path, root: Path) -> str:
    """One hash over everything evaluated (WikiQA test samples, BEIR files): promotion compares like with like."""
    digest = hashlib.md5()
    files = [Path(prepared) / cfg.wikiqa_test / f"{TEST_SPLIT}.parquet"]
    for beir in cfg.beir.values():
        folder = Path(root) / beir.folder
        files += sorted(p for p in folder.glob("corpus.jsonl*")) + [folder / "qrels" / f"{beir.split}.tsv"]
    for path in files:
        digest.update(f"{path.name}:{file_md5(path) if path.is_file() else 'missing'};".encode())
    digest.update(f"max_queries={cfg.max_queries};top_k={cfg.beir_top_k}".encode())
    return digest.hexdigest()


def first_stage_samples(samples: list[dict[str, Any]], scorer: Any, batch_size: int) -> list[dict[str, Any]]:
    """Each sample's candidates ordered by the first-stage scorer, as ``{"query", "positive", "documents"}``."""
    pairs = [(s["query"], doc) for s in samples for doc in s["positive"] + s["negative"]]
    scores = np.asarray(scorer.predict(pairs, batch_size=batch_size, show_progress_bar=True), dtype=float)
    ranked, start = [], 0
    for sample in samples:
        documents = sample["positive"] + sample["negative"]
        order = np.argsort(-scores[start : start + len(documents)], kind="stable")
        ranked.append(
            {"query": sample["query"], "positive": sample["positive"], "documents": [documents[i] for i in order]}
        )
        start += len(documents)
    return ranked


def build_evaluators(cfg: EvaluateConfig, prepared: Path, root: Path, scorer: Any | None) -> list[Any]:
    """The WikiQA reranking evaluator (bi-encoder first stage when configured) and one BEIR evaluator per set."""
    samples = load_test_samples(prepared, cfg.wikiqa_test, cfg.max_queries)
    if scorer is not None:
        samples = first_stage_samples(samples, scorer, cfg.batch_size)
    evaluators: list[Any] = [
        CrossEncoderRerankingEvaluator(
            samples, at_k=cfg.at_k, name=WIKIQA_EVALUATOR, batch_size=cfg.batch_size, show_progress_bar=True
        )
    ]
    if cfg.beir:
        evaluators.append(
            CrossEncoderBEIREvaluator(
                {name: Path(root) / beir.folder for name, beir in cfg.beir.items()},
                splits={name: beir.split for name, beir in cfg.beir.items()},
                top_k=cfg.beir_top_k,
                at_k=cfg.at_k,
                cache_dir=Layout(Path(root)).bm25_cache,
                name=BEIR_EVALUATOR,
                batch_size=cfg.batch_size,
                show_progress_bar=True,
            )
        )
    return evaluators


def run_evaluate(
    cfg: EvaluateConfig, tracking: TrackingConfig, model_dir: Path, prepared: Path, out: Path, root: Path
) -> EvaluateResult:
    """Evaluate the model and the baselines, write metrics.json, and log the model's metrics to the run."""
    out = Path(out)
    model = load_reranker(model_dir)
    scorer: Any = BiEncoderScorer(resolve_base_model(cfg.bi_encoder)) if cfg.bi_encoder else None
    components: dict[str, dict[str, float]] = {}
    if isinstance(model, FusedReranker):  # the cross-encoder's scores serve both the fusion and its own metrics
        model.cross_encoder = cross_encoder = CachedScorer(model.cross_encoder)
        components[CROSS_ENCODER_COMPONENT] = {}
        if scorer is not None and scorer.encoder.fingerprint() == model.prior.encoder.fingerprint():
            scorer = model.prior = CachedScorer(scorer)  # the baseline is the fusion's prior: embed once
    evaluators = build_evaluators(cfg, prepared, root, scorer)
    metrics: dict[str, float] = {}
    baselines: dict[str, dict[str, float]] = {BM25_BASELINE: {}, BI_ENCODER_BASELINE: {}}
    for evaluator in evaluators:
        results = {k: float(v) for k, v in evaluator(model, output_path=str(out / "details")).items()}
        metrics.update(results)
        if components:
            alone = evaluator(cross_encoder, output_path=None)
            components[CROSS_ENCODER_COMPONENT].update({k: float(v) for k, v in alone.items() if "_base_" not in k})
        first_stage = {k.replace("_base_", "_"): v for k, v in results.items() if "_base_" in k}
        if isinstance(evaluator, CrossEncoderBEIREvaluator):
            baselines[BM25_BASELINE].update(first_stage)
            if scorer is not None:
                baseline = evaluator(scorer, output_path=None)
                baselines[BI_ENCODER_BASELINE].update({k: float(v) for k, v in baseline.items() if "_base_" not in k})
        else:
            if scorer is not None:
                baselines[BI_ENCODER_BASELINE].update(first_stage)
            lexical = evaluator(BM25Scorer(), output_path=None)
            baselines[BM25_BASELINE].update({k: float(v) for k, v in lexical.items() if "_base_" not in k})
    primary = evaluators[0].primary_metric
    write_json_atomic(
        out / "metrics.json",
        {
            "metrics": metrics,
            "primary_metric": primary,
            "queries": len(evaluators[0].samples),
            "data_hash": evaluation_data_hash(cfg, prepared, root),
            "evaluators": {
                evaluator.name: {"class": type(evaluator).__name__, **evaluator.get_config_dict()}
                for evaluator in evaluators
            },
            "baselines": {
                "first_stage": "bi-encoder order for wikiqa_test, BM25 for beir (the base_* metrics)",
                **baselines,
            },
            "score_fusion": {"prior_share": model.prior_share} if isinstance(model, FusedReranker) else None,
            "components": components,
        },
    )
    run_id = pipeline_run_id(model_dir)
    if run_id:
        use_tracking(tracking.tracking_uri, tracking.experiment, root)
        client = mlflow.MlflowClient()
        for key, value in metrics.items():
            client.log_metric(run_id, mlflow_metric_name(key), value)
        for baseline_name, values in baselines.items():
            for key, value in values.items():
                client.log_metric(run_id, mlflow_metric_name(f"baseline_{baseline_name}_{key}"), value)
        for component, values in components.items():
            for key, value in values.items():
                client.log_metric(run_id, mlflow_metric_name(f"component_{component}_{key}"), value)
    logger.info("Evaluation: %s", metrics)
    return EvaluateResult(out / "metrics.json", metrics, primary)
