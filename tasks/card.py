"""Stage `card`: the trained model plus a model card rendered from what training and evaluation recorded.

Sources, in order of preference: ``training_summary.json["card_data"]`` (a ``ModelCardData.to_dict()`` written by the
trainer, when present), else the summary's plain keys; ``config.json`` for the model facts; ``metrics.json`` and
``report.json`` for the evaluation tables (every evaluator of the suite, with its dataset's title and Hub id, and
``base_*`` results as the first-stage baseline).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.errors import ModelLoadError
from rerank_lib.losses import BinaryCrossEntropyLoss
from rerank_lib.model_card import DatasetInfo, EvaluationInfo, LossInfo, ModelCardData, render_model_card
from rerank_lib.model_card.collect import column_stats, diff_hyperparameters, is_secret_key
from rerank_lib.package import PACKAGE_FILE, PackageSpec
from tasks.base_model import PACKAGED_MODELS
from tasks.config import CardConfig, TrainConfig
from tasks.evaluate import REPORT_FILE
from tasks.losses import available_losses
from tasks.train import SUMMARY_FILE

TRAIN_FILE = "train.parquet"

logger = logging.getLogger(__name__)

PACKAGED_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
STATS_ROWS = 1000


def train_defaults() -> dict[str, Any]:
    """The train section's default values (the settings a card lists as changed are the others)."""
    defaults = {}
    for name, field in TrainConfig.model_fields.items():
        if not field.is_required():
            value = field.get_default(call_default_factory=True)
            defaults[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return defaults


def _changed_settings(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The train settings that differ from their defaults (the dataset mix has none and is shown on its own)."""
    defaults = train_defaults()
    return {k: v for k, v in diff_hyperparameters(hyperparameters, defaults).items() if k in defaults}


def _base_model_id(name: str) -> str:
    return PACKAGED_BASE_MODEL_ID if name in PACKAGED_MODELS else name


def _evaluations(metrics: dict[str, Any], report: dict[str, Any]) -> list[EvaluationInfo]:
    """One entry per evaluator of the suite; results are keyed ``<evaluator>_<metric>`` in metrics.json."""
    results: dict[str, float] = metrics.get("metrics", {})
    evaluators: dict[str, Any] = report.get("evaluators") or {}
    if not evaluators:
        primary = report.get("primary_metric") or None
        return [EvaluationInfo.from_results("Evaluation", "evaluation", results, primary_metric=primary)]
    entries = []
    # Longest names first, so evaluator "a_b" does not take the results of evaluator "a".
    claimed: set[str] = set()
    by_name: dict[str, dict[str, float]] = {}
    for name in sorted(evaluators, key=len, reverse=True):
        prefix = f"{name}_"
        by_name[name] = {k: v for k, v in results.items() if k.startswith(prefix) and k not in claimed}
        claimed.update(by_name[name])
    for name, about in evaluators.items():
        config = {k: v for k, v in (about.get("config") or {}).items() if not is_secret_key(k)}
        config.update({k: about[k] for k in ("kind", "split", "first_stage", "samples") if about.get(k) is not None})
        entries.append(
            EvaluationInfo.from_results(
                str(about.get("class", "Evaluation")),
                str(about.get("title") or name),
                by_name[name],
                prefix=f"{name}_",
                primary_metric=about.get("primary_metric"),
                dataset_id=about.get("hub_id"),
                config=config,
            )
        )
    return entries


def _package(shipped: Path | None) -> dict[str, Any] | None:
    """The card's package note: the share, the first stage and its model's public name (None: a plain model)."""
    if shipped is None or not (Path(shipped) / PACKAGE_FILE).is_file():
        return None
    spec = PackageSpec.read(Path(shipped))
    model = _base_model_id(spec.first_stage_model) if spec.first_stage_model else "its zero-shot bi-encoder"
    return {
        "share": spec.share,
        "first_stage": spec.first_stage,
        "first_stage_model": model,
        "normalization": spec.normalization,
        "scales": spec.scales,
    }


def _comparison(metrics: dict[str, Any], report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per evaluator and metric: BM25, the bi-encoder, the cross-encoder alone and what ships, side by side."""
    shipped: dict[str, float] = metrics.get("metrics", {})
    baselines = metrics.get("baselines") or {}
    alone = (metrics.get("components") or {}).get("cross_encoder", {})
    rows = []
    for name, about in (report.get("evaluators") or {}).items():
        for key in sorted(k for k in shipped if k.startswith(f"{name}_") and "_base_" not in k):
            metric = key.removeprefix(f"{name}_")
            if about.get("kind") == "classification" and metric.endswith("_threshold"):
                continue
            rows.append(
                {
                    "evaluator": str(about.get("title") or name),
                    "metric": metric,
                    "bm25": (baselines.get("bm25") or {}).get(key),
                    "bi_encoder": (baselines.get("bi_encoder") or {}).get(key),
                    "cross_encoder": alone.get(key),
                    "shipped": shipped[key],
                }
            )
    return rows


def _training_stats(summary: dict[str, Any], prepared: Path | None) -> dict[str, Any]:
    """Column statistics: from the summary when training recorded them, else the first rows of the training data."""
    if summary.get("column_stats"):
        return summary["column_stats"]
    rows: list[dict[str, Any]] = list(summary.get("examples", []))
    train_file = Path(prepared) / TRAIN_FILE if prepared is not None else None
    if train_file is not None and train_file.is_file():
        import pandas as pd

        columns = list(summary.get("columns") or [])
        frame = pd.read_parquet(train_file).head(STATS_ROWS)
        rows = frame[[c for c in columns if c in frame.columns] or list(frame.columns)].to_dict(orient="records")
    return column_stats(rows, STATS_ROWS)


def _facts(cfg: CardConfig, config: dict[str, Any], metrics_path: Path, shipped: Path | None) -> dict[str, Any]:
    """What the card says whatever training recorded: names, the evaluation, and what ships beside what."""
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    report_path = metrics_path.with_name(REPORT_FILE)
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return {
        "model_name": cfg.model_name,
        "activation_fn": (config.get("sentence_transformers") or {}).get("activation_fn", "unknown"),
        "language": cfg.language,
        "license": cfg.license,
        "evaluations": _evaluations(metrics, report),
        "package": _package(shipped),
        "comparison": _comparison(metrics, report),
    }


def collect_card_data(
    cfg: CardConfig,
    trained: Path,
    metrics_path: Path,
    prepared: Path | None = None,
    hub_ids: dict[str, str] | None = None,
    shipped: Path | None = None,
) -> ModelCardData:
    """Card data from the training summary, the model config, the evaluation metrics and what ships."""
    trained = Path(trained)
    summary = json.loads((trained / SUMMARY_FILE).read_text(encoding="utf-8"))
    config = json.loads((trained / "config.json").read_text(encoding="utf-8"))
    num_labels = int(config.get("num_labels") or len(config.get("id2label") or {}) or 1)
    facts = _facts(cfg, config, Path(metrics_path), shipped) | {"num_labels": num_labels}
    if summary.get("card_data"):
        collected = ModelCardData.from_dict(summary["card_data"])
        datasets = [
            dataclasses.replace(info, hub_id=info.hub_id or (hub_ids or {}).get(info.name))
            for info in collected.datasets
        ]
        return dataclasses.replace(collected, datasets=datasets, **facts)

    hyperparameters = {k: v for k, v in summary.get("hyperparameters", {}).items() if not is_secret_key(k)}
    loss_name = summary["loss"]["name"]
    loss_cls = available_losses().get(loss_name, BinaryCrossEntropyLoss)
    dataset_name = summary.get("dataset_name", "train")
    stats = _training_stats(summary, prepared)
    return ModelCardData(
        base_model=_base_model_id(summary["base_model"]),
        max_length=int(hyperparameters.get("max_length") or config.get("max_position_embeddings") or 512),
        datasets=[
            DatasetInfo(
                name=dataset_name,
                size=int(summary["train_pairs"]),
                columns=list(summary["columns"]),
                examples=list(summary.get("examples", []))[:3],
                column_stats=stats,
                hub_id=(hub_ids or {}).get(dataset_name),
            )
        ],
        losses=[LossInfo(loss_name, summary["loss"]["config"], getattr(loss_cls, "citation", ""))],
        hyperparameters=hyperparameters,
        non_default_hyperparameters=_changed_settings(hyperparameters),
        log_history=summary.get("log_history", []),
        # The pipeline keeps the last step's weights unless training recorded a best checkpoint.
        best_step=summary.get("best_step", summary.get("global_step")),
        global_step=summary.get("global_step"),
        training_seconds=summary.get("training_seconds"),
        **facts,
    )


def run_card(
    cfg: CardConfig,
    trained: Path,
    metrics_path: Path,
    out: Path,
    prepared: Path | None = None,
    hub_ids: dict[str, str] | None = None,
    shipped: Path | None = None,
) -> Path:
    """Copy what ships (``shipped``, default the trained model) to ``out`` with its rendered README.md.

    ``prepared`` (optional) is the prepared-data folder, used for column statistics when training did not record them;
    ``hub_ids`` the Hub ids of training datasets by catalog name (the card's ``datasets`` header). Returns the card.
    """
    source = Path(shipped) if shipped is not None else Path(trained)
    if not source.is_dir():
        raise ModelLoadError(f"{source} does not exist; run the package stage first (`rerank stage package`).")
    card = collect_card_data(cfg, Path(trained), Path(metrics_path), prepared, hub_ids, source)
    text = render_model_card(card)

    def build(staging: Path) -> None:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        (staging / "README.md").write_text(text, encoding="utf-8")

    build_directory_atomic(Path(out), build)
    logger.info("Model card written to %s", Path(out) / "README.md")
    return Path(out) / "README.md"
