"""Stage `train`: fine-tune the base model into a cross-encoder; resumes from the last checkpoint of the same run."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from datasets import Dataset
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.losses import BinaryCrossEntropyLoss
from tasks.base_model import resolve_base_model
from tasks.config import TrackingConfig, TrainConfig
from tasks.io import file_md5, write_json_atomic, write_text_atomic
from tasks.prepare import TRAIN_FILE
from tasks.tracking import RUN_ID_ENV, MlflowStepMetricsCallback, is_main_process, start_run

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "run_config.json"
MLFLOW_RUN_FILE = "mlflow_run_id"
TRAINING_LOG_FILE = "training_log.csv"
SUMMARY_FILE = "training_summary.json"
LOSSES = {"BinaryCrossEntropyLoss": BinaryCrossEntropyLoss}


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    train_pairs: int
    global_step: int
    training_seconds: float
    resumed_from: str | None


def _resume_point(checkpoints: Path, run_config: dict) -> str | None:
    """The last checkpoint of an interrupted run with the same config and data, else None (and start clean)."""
    saved = checkpoints / RUN_CONFIG_FILE
    if checkpoints.is_dir() and saved.is_file() and json.loads(saved.read_text()) == run_config:
        return get_last_checkpoint(str(checkpoints))
    if checkpoints.exists():
        logger.info("Checkpoints in %s belong to another config or data; starting fresh.", checkpoints)
        shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_json_atomic(saved, run_config)
    return None


def _mlflow_run_id(tracking: TrackingConfig, root: Path, checkpoints: Path, resuming: bool) -> str:
    """The pipeline's MLflow run: given by the flow, kept from an interrupted run, or new."""
    stored = checkpoints / MLFLOW_RUN_FILE
    run_id = os.environ.get(RUN_ID_ENV) or (stored.read_text().strip() if resuming and stored.is_file() else None)
    run_id = start_run(tracking.tracking_uri, tracking.experiment, root, run_id)
    write_text_atomic(stored, run_id)
    return run_id


def _write_training_log(path: Path, log_history: list[dict]) -> None:
    """Training loss per logged step, for `dvc plots show`."""
    rows = [
        {"step": row["step"], "epoch": row.get("epoch"), "loss": row["loss"], "learning_rate": row.get("learning_rate")}
        for row in log_history
        if "loss" in row
    ]
    pd.DataFrame(rows, columns=["step", "epoch", "loss", "learning_rate"]).to_csv(path, index=False)


def run_train(
    cfg: TrainConfig, tracking: TrackingConfig, prepared: Path, checkpoints: Path, out: Path, root: Path
) -> TrainResult:
    """Train with the configured loss and save the final model (with its summary and log) to ``out``."""
    train_file = Path(prepared) / TRAIN_FILE
    frame = pd.read_parquet(train_file)
    dataset = Dataset.from_pandas(frame[["question", "sentence", "label"]], preserve_index=False)
    run_config = {"train": cfg.model_dump(mode="json"), "data_md5": file_md5(train_file)}
    resume = _resume_point(Path(checkpoints), run_config)
    # Only rank 0 talks to MLflow; other ranks of a torchrun/accelerate launch just train.
    run_id = _mlflow_run_id(tracking, Path(root), Path(checkpoints), resume is not None) if is_main_process() else ""

    set_seed(cfg.seed)  # the new scoring head is initialised from this seed
    model = CrossEncoder(resolve_base_model(cfg.base_model), num_labels=1, max_length=cfg.max_length)
    loss = LOSSES[cfg.loss](model)
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to="none",
        dataloader_drop_last=False,
    )
    callbacks = [MlflowStepMetricsCallback(run_id)] if run_id else []
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    if resume:
        logger.info("Resuming training from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started

    if not trainer.is_world_process_zero():
        return TrainResult(Path(out), len(dataset), trainer.state.global_step, seconds, resume)
    model.save_pretrained(out)
    _write_training_log(Path(out) / TRAINING_LOG_FILE, trainer.state.log_history)
    summary = {
        "mlflow_run_id": run_id,
        "base_model": cfg.base_model,
        "train_pairs": len(dataset),
        "dataset_name": "wikiqa",
        "columns": list(frame.columns),
        "examples": frame.head(3).to_dict(orient="records"),
        "loss": {"name": cfg.loss, "config": loss.get_config_dict()},
        "hyperparameters": cfg.model_dump(mode="json"),
        "global_step": trainer.state.global_step,
        "training_seconds": round(seconds, 1),
        "log_history": trainer.state.log_history,
        "resumed_from": resume,
    }
    write_json_atomic(Path(out) / SUMMARY_FILE, summary)
    logger.info("Trained %d steps in %.0fs; model saved to %s", trainer.state.global_step, seconds, out)
    return TrainResult(Path(out), len(dataset), trainer.state.global_step, seconds, resume)
