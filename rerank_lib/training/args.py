"""Training arguments: transformers' TrainingArguments plus the batch-sampling choices that ranking losses need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from rerank_lib.errors import ConfigError
from rerank_lib.training.samplers import BatchSamplers, MultiDatasetBatchSamplers


def _enum_value(enum: type, value: Any, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in enum)
        raise ConfigError(f"{name}={value!r} is not one of {choices}.") from None


@dataclass
class CrossEncoderTrainingArguments(TrainingArguments):
    """``TrainingArguments`` for cross-encoders.

    Args:
        batch_sampler: ``"batch_sampler"`` (shuffled rows), ``"no_duplicates"`` (no text twice in a batch, for
            in-batch negatives), ``"group_by_label"`` (each label an even number of times per batch) or
            ``"length_grouped"`` (rows of similar token length together, shuffled per epoch: less padding). A custom
            class or module-level function is accepted too: it is called as
            ``factory(dataset, batch_size=, drop_last=, valid_label_columns=, generator=, seed=)`` and must return a
            batch sampler; give it ``set_epoch(epoch)`` so each epoch (and a resumed run) is reshuffled the same way.
        multi_dataset_batch_sampler: for a ``DatasetDict``, ``"proportional"`` (every batch of every dataset once, in
            a shuffled order) or ``"round_robin"`` (datasets take turns until the smallest runs out). Streaming datasets
            have no size, so a dict of them needs ``"round_robin"``; the first stream to run short ends the pass.
        last_layer_first_token_only: during training steps, the last layer of a BERT sequence classifier computes
            the first token only, the one its classifier reads (keys and values still cover every token): the same
            logits and gradients, about a sixth less work for a 6-layer model. Other architectures train as they
            are. Turn it off for a custom loss that reads the last layer's hidden states of every token.
        prompts: prompts used while training, overriding the model's default prompts (which apply otherwise, as
            at predict time): a text put before every query, or per dataset name (of a ``DatasetDict``) a query
            prompt or ``{"query": ..., "document": ...}``. Store the prompts meant for inference with the model
            (``CrossEncoder(..., prompts=, default_prompt_name=)``).
        layerwise_lr_decay: 1.0 (default) trains every parameter at ``learning_rate``; below 1, a parameter ``d``
            steps below the head trains at ``learning_rate * layerwise_lr_decay ** d`` (the top encoder layer at
            ``d = 1``, the embeddings deepest): the base model's lower layers keep more of what they knew. The trainer
            refuses it with a custom optimizer (``optimizers=`` or ``optimizer_cls_and_kwargs``).

    Text columns are consumed by the loss, not by the model's ``forward``, so unused-column removal is off. Batches
    hold lists of strings, which accelerate cannot broadcast, so each process reads its own batches
    (``accelerator_config.dispatch_batches=False``) unless set explicitly.
    """

    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: the loss reads the text columns, which Trainer would otherwise drop."},
    )
    batch_sampler: BatchSamplers | str = field(
        default=BatchSamplers.BATCH_SAMPLER,
        metadata={
            "help": "batch_sampler, no_duplicates, group_by_label or length_grouped (or a custom class in Python)."
        },
    )
    multi_dataset_batch_sampler: MultiDatasetBatchSamplers | str = field(
        default=MultiDatasetBatchSamplers.PROPORTIONAL,
        metadata={"help": "proportional or round_robin: how batches of several datasets are interleaved."},
    )
    last_layer_first_token_only: bool = field(
        default=True,
        metadata={"help": "BERT classifiers: the last layer computes [CLS] only in training steps (same logits)."},
    )

    layerwise_lr_decay: float = field(
        default=1.0,
        metadata={"help": "In (0, 1]: each layer below the head trains at this factor times the rate above it."},
    )

    prompts: str | dict[str, Any] | None = field(
        default=None,
        metadata={"help": "A query prompt for every dataset, or per dataset name a query prompt or {query, document}."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_prompts(self.prompts)
        if not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise ConfigError(f"layerwise_lr_decay={self.layerwise_lr_decay!r} must be in (0, 1].")
        # Text columns are read by the loss; dropping "unused" columns would drop the data itself.
        self.remove_unused_columns = False
        if isinstance(self.batch_sampler, str):
            self.batch_sampler = _enum_value(BatchSamplers, self.batch_sampler, "batch_sampler")
        elif not callable(self.batch_sampler):
            raise ConfigError(f"batch_sampler must be a name, a class or a function; got {self.batch_sampler!r}.")
        self.multi_dataset_batch_sampler = _enum_value(
            MultiDatasetBatchSamplers, self.multi_dataset_batch_sampler, "multi_dataset_batch_sampler"
        )
        if self.accelerator_config is not None and getattr(self.accelerator_config, "dispatch_batches", 0) is None:
            self.accelerator_config.dispatch_batches = False

    def to_dict(self) -> dict[str, Any]:
        """As transformers', with a custom batch sampler written as its import path so the dict stays JSON."""
        data = super().to_dict()
        sampler = data.get("batch_sampler")
        if callable(sampler):
            data["batch_sampler"] = f"{getattr(sampler, '__module__', '?')}.{getattr(sampler, '__qualname__', sampler)}"
        return data


def _check_prompts(prompts: Any) -> None:
    if prompts is None or isinstance(prompts, str):
        return
    if not isinstance(prompts, dict):
        raise ConfigError(f"prompts must be a text or a dict per dataset name; got {type(prompts).__name__}.")
    for name, value in prompts.items():
        if isinstance(value, str):
            continue
        if not isinstance(value, dict) or not set(value) <= {"query", "document"}:
            raise ConfigError(f"prompts[{name!r}] must be a text or {{'query': ..., 'document': ...}}; got {value!r}.")
