"""CrossEncoderTrainer: transformers' Trainer, narrowly extended for ranking losses and evaluators.

The training loop stays transformers'. We override only how a loss is computed from text columns, how the
model is saved and restored (a CrossEncoder folder instead of a raw state dict), and what evaluation reports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalLoopOutput

from rerank_lib.errors import ConfigError
from rerank_lib.model import CrossEncoder
from rerank_lib.training.args import CrossEncoderTrainingArguments
from rerank_lib.training.collator import DATASET_NAME_KEY, CrossEncoderDataCollator

logger = logging.getLogger(__name__)

Evaluator = Callable[..., dict[str, float]]


class CrossEncoderTrainer(Trainer):
    """Trains a :class:`CrossEncoder` with a ranking loss; evaluators run at every evaluation.

    Args:
        model: the CrossEncoder to train.
        args: training arguments; defaults write to ``checkpoints/``.
        train_dataset / eval_dataset: datasets whose text columns, in order, are the loss inputs.
        loss: a loss module, or a dict of losses keyed by dataset name. Default: BinaryCrossEntropyLoss for a
            one-output model, CrossEntropyLoss otherwise.
        evaluator: an evaluator called as ``evaluator(model, output_path=..., epoch=..., steps=...)``.
    """

    loss_is_scaled_for_ga = False  # our losses return per-batch means

    def __init__(
        self,
        model: CrossEncoder,
        args: CrossEncoderTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: nn.Module | dict[str, nn.Module] | None = None,
        evaluator: Evaluator | None = None,
        data_collator: Callable | None = None,
        callbacks: list[TrainerCallback] | None = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = CrossEncoderTrainingArguments(output_dir="checkpoints")
        args.remove_unused_columns = False
        self.evaluator = evaluator
        self.loss = self._resolve_loss(model, loss)
        # An evaluator alone is a valid evaluation target; Trainer would demand an eval_dataset.
        strategy = args.eval_strategy
        bypass = eval_dataset is None and evaluator is not None and str(strategy) not in ("no", "IntervalStrategy.NO")
        if bypass:
            args.eval_strategy = "no"
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            data_collator=data_collator or CrossEncoderDataCollator(),
            processing_class=model.tokenizer,
            callbacks=callbacks,
            **kwargs,
        )
        if bypass:
            self.args.eval_strategy = strategy

    @staticmethod
    def _resolve_loss(model: CrossEncoder, loss: nn.Module | dict[str, nn.Module] | None) -> Any:
        if loss is not None:
            return loss
        from rerank_lib.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

        return BinaryCrossEntropyLoss(model) if model.num_labels == 1 else CrossEntropyLoss(model)

    # ----- loss -----
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        inputs = dict(inputs)
        dataset_name = inputs.pop(DATASET_NAME_KEY, None)
        labels = inputs.pop("label", None)
        features = list(inputs.values())
        loss_fn = self._loss_for(dataset_name)
        loss = loss_fn(features, labels)
        if isinstance(loss, dict):
            components = {name: value for name, value in loss.items()}
            loss = torch.stack(list(components.values())).sum()
        return (loss, {}) if return_outputs else loss

    def _loss_for(self, dataset_name: str | None) -> nn.Module:
        if not isinstance(self.loss, dict):
            return self.loss
        if dataset_name is None or dataset_name not in self.loss:
            raise ConfigError(f"No loss for dataset {dataset_name!r}; the loss dict has keys {sorted(self.loss)}.")
        return self.loss[dataset_name]

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, None, None]:
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ----- evaluation -----
    def _run_evaluator(self, metric_key_prefix: str) -> dict[str, float]:
        if self.evaluator is None:
            return {}
        output_path = os.path.join(self.args.output_dir, "eval")
        epoch = self.state.epoch if self.state.epoch is not None else -1
        results = self.evaluator(self.model, output_path=output_path, epoch=epoch, steps=self.state.global_step)
        return {f"{metric_key_prefix}_{key}": float(value) for key, value in results.items()}

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> EvalLoopOutput:
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        if prefix == "eval" or (isinstance(self.eval_dataset, dict) and prefix.startswith("eval_")):
            if not getattr(self, "_evaluator_ran_this_round", False):
                output.metrics.update(self._run_evaluator("eval"))
                self._evaluator_ran_this_round = isinstance(self.eval_dataset, dict)
        return output

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        self._evaluator_ran_this_round = False
        if eval_dataset is None and self.eval_dataset is None:
            metrics = self._run_evaluator(metric_key_prefix)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics
        return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    # ----- saving and restoring -----
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        model = self.accelerator.unwrap_model(self.model)
        model.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        self._load_weights_into(target, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        checkpoint = self.state.best_model_checkpoint
        logger.info("Loading best model from %s (score: %s).", checkpoint, self.state.best_metric)
        self._load_weights_into(self.accelerator.unwrap_model(self.model), checkpoint)

    @staticmethod
    def _load_weights_into(model: CrossEncoder, checkpoint: str) -> None:
        from safetensors.torch import load_file

        weights = os.path.join(checkpoint, "model.safetensors")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"No model.safetensors in checkpoint {checkpoint}.")
        state_dict = load_file(weights, device=str(model.device))
        missing, unexpected = model.model.load_state_dict(state_dict, strict=False)
        # Tied or buffer-only keys may legitimately be absent; real weights must match.
        missing = [key for key in missing if not key.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(
                f"Checkpoint {checkpoint} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}."
            )
