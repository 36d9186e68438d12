"""Collects what a model card says about training, while training runs: nothing is written by hand afterwards.

The collector fills the fields of :class:`rerank_lib.model_card.ModelCardData` (datasets, losses, evaluations,
hyperparameters, log history, training time) and keeps the extras the dataclass has no field for as attributes:
column statistics, evaluation datasets, every hyperparameter, and the best step.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rerank_lib.activation import activation_to_path
from rerank_lib.model_card.collect import dataset_info, hyperparameters_from_args, loss_info
from rerank_lib.model_card.data import ColumnStats, DatasetInfo, EvaluationInfo, LossInfo, ModelCardData


class ModelCardCallback(TrainerCallback):
    """Fills the model card data during training; read it through ``trainer.model_card_data``.

    Attributes (beyond ModelCardData's fields):
        column_stats: ``{dataset name: {column: statistics}}`` over up to 1,000 rows of each train/eval dataset.
        eval_datasets: DatasetInfo for each evaluation dataset.
        all_hyperparameters / hyperparameters: every training argument (no paths or secrets) / those differing
            from the defaults.
        best_step, best_metric, best_model_checkpoint: the best evaluation, when ``metric_for_best_model`` is set.
    """

    def __init__(self, trainer: Trainer) -> None:  # the CrossEncoderTrainer (typed by its base: it imports this)
        self._trainer = weakref.ref(trainer)  # the trainer owns this callback; no reference cycle
        self.train_datasets: list[DatasetInfo] = []
        self.eval_datasets: list[DatasetInfo] = []
        self.column_stats: dict[str, dict[str, ColumnStats]] = {}
        self.losses: list[LossInfo] = []
        self.evaluations: list[EvaluationInfo] = []
        self.all_hyperparameters: dict[str, Any] = {}
        self.hyperparameters: dict[str, Any] = {}
        self.log_history: list[dict[str, Any]] = []
        self.best_step: int | None = None
        self.best_metric: float | None = None
        self.best_model_checkpoint: str | None = None
        self.training_seconds: float | None = None
        self._seen_datasets: dict[tuple[str, str], tuple[int, DatasetInfo]] = {}
        self._started: float | None = None

    # ----- collection -----
    def _describe(self, split: str, name: str, dataset: Any) -> DatasetInfo:
        key = (split, name)
        cached = self._seen_datasets.get(key)
        if cached is not None and cached[0] == id(dataset):
            return cached[1]
        info = dataset_info(name, dataset, split=split)
        stats = info.column_stats
        self.column_stats[name if split == "train" else f"{split}:{name}"] = stats
        self._seen_datasets[key] = (id(dataset), info)
        return info

    @staticmethod
    def _named(dataset: Any, default: str) -> list[tuple[str, Any]]:
        if dataset is None:
            return []
        if isinstance(dataset, dict):
            return list(dataset.items())
        info = getattr(dataset, "info", None)
        return [(getattr(info, "dataset_name", None) or default, dataset)]

    def collect(self, trainer: Trainer) -> None:
        """Datasets, losses and hyperparameters as they stand now."""
        self.train_datasets = [self._describe("train", n, d) for n, d in self._named(trainer.train_dataset, "train")]
        self.eval_datasets = [self._describe("eval", n, d) for n, d in self._named(trainer.eval_dataset, "eval")]
        loss = trainer.loss
        losses = list(loss.values()) if isinstance(loss, dict) else [loss] if loss is not None else []
        unique = list({id(item): item for item in losses}.values())
        self.losses = [loss_info(item) for item in unique]
        self.all_hyperparameters, self.hyperparameters = hyperparameters_from_args(trainer.args)

    def record_evaluation(self, evaluator: Any, results: dict[str, float]) -> None:
        """The latest results, one entry per evaluator (a SequentialEvaluator's members are split by name)."""
        members = list(getattr(evaluator, "evaluators", None) or [evaluator])
        named = [str(getattr(member, "name", "") or "") for member in members]
        claimed: set[str] = set()
        keys_of: list[list[str]] = []
        for name in named:  # named members own the keys with their prefix
            keys = [key for key in results if name and key.startswith(f"{name}_") and key not in claimed]
            claimed.update(keys)
            keys_of.append(keys)
        for position, name in enumerate(named):  # an unnamed member takes what no named one claimed
            if not name:
                keys_of[position] = [key for key in results if key not in claimed]
                claimed.update(keys_of[position])
        entries = []
        for member, name, keys in zip(members, named, keys_of, strict=True):
            prefix = f"{name}_" if name else ""
            primary = getattr(member, "primary_metric", None)
            entries.append(
                EvaluationInfo(
                    evaluator=type(member).__name__,
                    dataset=name or "evaluation",
                    metrics={key.removeprefix(prefix): float(results[key]) for key in keys},
                    primary_metric=str(primary).removeprefix(prefix) if primary else None,
                )
            )
        self.evaluations = entries

    # ----- callback hooks -----
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        trainer = self._trainer()
        if trainer is not None:
            self.collect(trainer)
        self._started = time.perf_counter()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._started is not None:
            self.training_seconds = round(time.perf_counter() - self._started, 1)
        self.log_history = [dict(row) for row in state.log_history]
        self.best_step = state.best_global_step
        self.best_metric = state.best_metric
        self.best_model_checkpoint = state.best_model_checkpoint
        trainer = self._trainer()
        if trainer is not None and not isinstance(trainer.train_dataset, dict):
            for info, (_, dataset) in zip(
                self.train_datasets, self._named(trainer.train_dataset, "train"), strict=False
            ):
                if isinstance(dataset, IterableDataset):
                    info.size = state.global_step * trainer.get_total_train_batch_size(args)

    # ----- output -----
    def model_card_data(self, model: Any, args: TrainingArguments, **overrides: Any) -> ModelCardData:
        """A ModelCardData for ``model``; ``overrides`` set any field (model_name, language, license, ...)."""
        model_name = overrides.pop("model_name", None) or args.hub_model_id or Path(args.output_dir or "model").name
        values: dict[str, Any] = {
            "model_name": model_name,
            "base_model": str(getattr(model, "model_name_or_path", "")),
            "num_labels": int(getattr(model, "num_labels", 1)),
            "max_length": int(getattr(model, "max_length", 0) or 0),
            "activation_fn": activation_to_path(model.activation_fn) if hasattr(model, "activation_fn") else "",
            "model_id": args.hub_model_id,
            "datasets": list(self.train_datasets),
            "losses": list(self.losses),
            "evaluations": list(self.evaluations),
            "hyperparameters": dict(self.hyperparameters),
            "log_history": list(self.log_history),
            "training_seconds": self.training_seconds,
        }
        values.update(overrides)
        return ModelCardData(**values)
