"""Evaluation during training: the evaluator the trainer calls every N steps, and the curves it leaves behind.

The curves (``eval_log.csv`` next to the trained model) are what ``dvc plots show`` draws beside the loss; the same
numbers reach MLflow as step metrics through the trainer's log.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rerank_lib.errors import ConfigError
from rerank_lib.evaluation import CrossEncoderBEIREvaluator
from tasks.config import TrainEvaluationConfig
from tasks.layout import Layout
from tasks.tracking import mlflow_metric_name

EVAL_LOG_FILE = "eval_log.csv"


def metric_prefix(cfg: TrainEvaluationConfig) -> str:
    """How the trainer names this evaluator's metrics in its log: ``eval_<name>_mean_``."""
    return f"eval_{cfg.evaluator_name}_mean_"


def build_training_evaluator(cfg: TrainEvaluationConfig, root: Path) -> CrossEncoderBEIREvaluator | None:
    """The BEIR evaluator of ``train.evaluation`` (None when off); a missing folder fails before any training."""
    if cfg.steps is None:
        return None
    folder = Path(root) / str(cfg.folder)
    qrels = folder / "qrels" / f"{cfg.split}.tsv"
    if not qrels.is_file():
        raise ConfigError(
            f"train.evaluation.folder/split: {qrels} does not exist; point them at a local BEIR folder and one of "
            f"its qrels splits, or set train.evaluation.steps: null to train without evaluation."
        )
    return CrossEncoderBEIREvaluator(
        {folder.name: folder},
        split=cfg.split,
        top_k=cfg.top_k,
        at_k=cfg.at_k,
        max_queries=cfg.max_queries,
        cache_dir=Layout(Path(root)).bm25_cache,
        name=cfg.evaluator_name,
        batch_size=cfg.batch_size,
        write_csv=False,
    )


def write_eval_log(path: Path, log_history: list[dict], cfg: TrainEvaluationConfig) -> pd.DataFrame:
    """One row per evaluation: step, epoch, the model's metrics and BM25's (``bm25_*``), with MLflow-valid names."""
    rows = []
    prefix = metric_prefix(cfg)
    for entry in log_history:
        metrics = {key[len(prefix) :]: value for key, value in entry.items() if key.startswith(prefix)}
        if not metrics:
            continue
        row = {"step": entry["step"], "epoch": entry.get("epoch")}
        for name, value in sorted(metrics.items()):
            column = f"bm25_{name[len('base_') :]}" if name.startswith("base_") else name
            row[mlflow_metric_name(column)] = value
        rows.append(row)
    frame = pd.DataFrame(rows).drop_duplicates("step", keep="last") if rows else pd.DataFrame(columns=["step"])
    frame.to_csv(path, index=False)
    return frame
