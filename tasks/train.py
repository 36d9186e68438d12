"""Stage `train`: fine-tune the base model into a cross-encoder; resumes from the last checkpoint of the same run."""

from __future__ import annotations

import json
import logging
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
from tasks.config import TrainConfig
from tasks.io import file_md5, write_json_atomic
from tasks.prepare import TRAIN_FILE

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "run_config.json"
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
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_json_atomic(saved, run_config)
    return None


def run_train(cfg: TrainConfig, prepared: Path, checkpoints: Path, out: Path) -> TrainResult:
    """Train with the configured loss and save the final model to ``out``."""
    train_file = Path(prepared) / TRAIN_FILE
    frame = pd.read_parquet(train_file)
    dataset = Dataset.from_pandas(frame[["question", "sentence", "label"]], preserve_index=False)
    run_config = {"train": cfg.model_dump(mode="json"), "data_md5": file_md5(train_file)}
    resume = _resume_point(Path(checkpoints), run_config)

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
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    if resume:
        logger.info("Resuming training from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started

    model.save_pretrained(out)
    summary = {
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
