"""The old ``CrossEncoder.fit(train_dataloader, ...)`` API, run on CrossEncoderTrainer.

Old scripts pass a DataLoader of ``InputExample(texts=[query, passage], label=...)`` and a torch loss applied to
logits (``nn.BCEWithLogitsLoss()`` by default). Here the examples become a Dataset, the logits loss is wrapped as a
rerank_lib loss, and training runs on the trainer, so old scripts get checkpoint-free, evaluated, seeded training.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import TrainOutput

from rerank_lib.errors import ConfigError, DataValidationError
from rerank_lib.training.args import CrossEncoderTrainingArguments

if TYPE_CHECKING:
    from rerank_lib.model import CrossEncoder

logger = logging.getLogger(__name__)

# Old scheduler names -> transformers lr_scheduler_type
SCHEDULERS = {
    "constantlr": "constant",
    "warmupconstant": "constant_with_warmup",
    "warmuplinear": "linear",
    "warmupcosine": "cosine",
    "warmupcosinewithhardrestarts": "cosine_with_restarts",
}


@dataclass
class InputExample:
    """One training example of the old API: the texts of a pair and its label."""

    texts: list[str]
    label: float | int = 0
    guid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def examples_to_dataset(examples: Iterable[Any]) -> Dataset:
    """InputExamples, (a, b, label) tuples or dicts with two text columns and a label, as a Dataset."""
    first, second, labels = [], [], []
    for index, example in enumerate(examples):
        if hasattr(example, "texts"):
            texts, label = list(example.texts), getattr(example, "label", None)
        elif isinstance(example, dict):
            values = list(example.values())
            label = example.get("label", example.get("score"))
            texts = [value for value in values if isinstance(value, str)]
        elif isinstance(example, (tuple, list)) and len(example) == 3:
            texts, label = list(example[:2]), example[2]
        else:
            raise DataValidationError(f"fit(): example {index} is {example!r:.80}; expected an InputExample.")
        if len(texts) != 2 or not all(isinstance(text, str) for text in texts):
            raise DataValidationError(f"fit(): example {index} has texts {texts!r:.80}; expected two strings.")
        if label is None or isinstance(label, str):
            raise DataValidationError(f"fit(): example {index} has label {label!r}; expected a number.")
        first.append(texts[0])
        second.append(texts[1])
        labels.append(label)
    if not labels:
        raise DataValidationError("fit(): the train_dataloader holds no examples.")
    return Dataset.from_dict({"sentence1": first, "sentence2": second, "label": labels})


class LogitsLoss(nn.Module):
    """A torch loss on logits (``loss_fct(logits, labels)``, the old API) as a rerank_lib loss on text columns."""

    def __init__(self, model: CrossEncoder, loss_fct: nn.Module, activation_fct: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct
        self.activation_fct = activation_fct if activation_fct is not None else nn.Identity()

    def forward(self, inputs: list[list[str]], labels: torch.Tensor) -> torch.Tensor:
        logits = self.activation_fct(self.model.score_pairs(list(zip(inputs[0], inputs[1], strict=True))))
        if self.model.num_labels == 1:
            logits = logits.view(-1)
            labels = labels.to(logits.device, dtype=torch.float)
        else:
            labels = labels.to(logits.device, dtype=torch.long)
        return self.loss_fct(logits.float(), labels.float() if self.model.num_labels == 1 else labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss_fct": type(self.loss_fct).__name__, "activation_fct": type(self.activation_fct).__name__}


def sequential_batch_sampler(dataset: Any, batch_size: int, drop_last: bool = False, **kwargs: Any) -> BatchSampler:
    """Batches in dataset order, for an old DataLoader that did not shuffle."""
    return BatchSampler(SequentialSampler(range(len(dataset))), batch_size, drop_last)


class _SaveBestCallback(TrainerCallback):
    """The old ``output_path`` + ``save_best_model``: save whenever the evaluator's primary score improves."""

    def __init__(self, model: CrossEncoder, output_path: str | None, metric: str | None, callback: Callable | None):
        self.model = model
        self.output_path = output_path
        self.metric = metric
        self.callback = callback
        self.best: float | None = None

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics: dict, **kwargs: Any
    ) -> None:
        key = f"eval_{self.metric}" if self.metric else None
        if key is None or key not in metrics:
            key = next((name for name in metrics if name.startswith("eval_") and not name.endswith("runtime")), None)
        if key is None:
            return
        score = float(metrics[key])
        if self.callback is not None:
            self.callback(score, state.epoch, state.global_step)
        if self.output_path is not None and (self.best is None or score > self.best):
            self.best = score
            if state.is_world_process_zero:
                self.model.save_pretrained(self.output_path)


def fit(
    model: CrossEncoder,
    train_dataloader: DataLoader,
    loss_fct: nn.Module | None = None,
    evaluator: Callable | None = None,
    epochs: int = 1,
    activation_fct: nn.Module | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 0,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: dict[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, float, int], None] | None = None,
    show_progress_bar: bool = True,
    seed: int = 42,
) -> TrainOutput:
    """Train ``model`` the old way; see :meth:`rerank_lib.model.CrossEncoder.fit`."""
    from rerank_lib.training.trainer import CrossEncoderTrainer

    dataset = examples_to_dataset(train_dataloader.dataset)
    scheduler_type = SCHEDULERS.get(scheduler.lower())
    if scheduler_type is None:
        raise ConfigError(f"fit(): unknown scheduler {scheduler!r}; expected one of {sorted(SCHEDULERS)}.")
    if loss_fct is None:
        loss_fct = nn.BCEWithLogitsLoss() if model.num_labels == 1 else nn.CrossEntropyLoss()
    if getattr(loss_fct, "model", None) is model:  # already a rerank_lib loss on text columns
        loss: nn.Module = loss_fct
    else:
        loss = LogitsLoss(model, loss_fct, activation_fct)
    optimizer_params = {"lr": 2e-5, **(optimizer_params or {})}
    use_cpu = model.device.type == "cpu"
    has_evaluator = evaluator is not None
    strategy = "steps" if has_evaluator and evaluation_steps > 0 else "epoch" if has_evaluator else "no"
    shuffled = isinstance(getattr(train_dataloader, "sampler", None), RandomSampler)
    with tempfile.TemporaryDirectory(prefix="rerank-fit-") as scratch:
        args = CrossEncoderTrainingArguments(
            output_dir=scratch,
            num_train_epochs=epochs,
            per_device_train_batch_size=train_dataloader.batch_size or 1,
            learning_rate=optimizer_params["lr"],
            weight_decay=weight_decay,
            lr_scheduler_type=scheduler_type,
            warmup_steps=warmup_steps,
            max_grad_norm=max_grad_norm,
            eval_strategy=strategy,
            eval_steps=evaluation_steps if strategy == "steps" else None,
            save_strategy="no",
            logging_steps=max(evaluation_steps, 1) if evaluation_steps else 500,
            bf16=use_amp and torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            fp16=use_amp and torch.cuda.is_available() and not torch.cuda.is_bf16_supported(),
            use_cpu=use_cpu,
            report_to="none",
            disable_tqdm=not show_progress_bar,
            seed=seed,
            dataloader_drop_last=bool(getattr(train_dataloader, "drop_last", False)),
            batch_sampler="batch_sampler" if shuffled else sequential_batch_sampler,
        )
        metric = getattr(evaluator, "primary_metric", None)
        save_best = _SaveBestCallback(model, output_path if save_best_model else None, metric, callback)
        trainer = CrossEncoderTrainer(
            model,
            args=args,
            train_dataset=dataset,
            loss=loss,
            evaluator=evaluator,
            callbacks=[save_best] if has_evaluator else None,
            optimizer_cls_and_kwargs=(optimizer_class, optimizer_params),
        )
        output = trainer.train()
    if output_path is not None and (not has_evaluator or not save_best_model):
        model.save_pretrained(output_path)
    return output
