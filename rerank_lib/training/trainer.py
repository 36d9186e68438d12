"""CrossEncoderTrainer: transformers' Trainer, narrowly extended for ranking losses and evaluators.

The training loop stays transformers'. We override how batches are drawn (our seeded batch samplers, several
datasets, streaming data), how a loss is computed from text columns (through the DDP-wrapped model, so gradients
synchronise), how the model is saved and restored (a CrossEncoder folder instead of a raw state dict), what evaluation
reports (evaluators next to the eval loss), and where the Hub push goes (``rerank_lib.hub``).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import EvalLoopOutput, HubStrategy, SaveStrategy, seed_worker

from rerank_lib.adapters import load_adapter_weights
from rerank_lib.columns import DATASET_NAME_KEY, LABEL_COLUMNS
from rerank_lib.errors import ConfigError
from rerank_lib.model import CrossEncoder
from rerank_lib.model_card.data import ModelCardData
from rerank_lib.training.args import CrossEncoderTrainingArguments
from rerank_lib.training.card_callback import ModelCardCallback
from rerank_lib.training.collator import CrossEncoderDataCollator
from rerank_lib.training.first_token_last_layer import last_layer_first_token_only
from rerank_lib.training.layer_lr import layerwise_parameter_groups
from rerank_lib.training.samplers import MultiDatasetBatchSampler, MultiDatasetBatchSamplers, build_batch_sampler

logger = logging.getLogger(__name__)

Evaluator = Callable[..., dict[str, float]]
LossSpec = nn.Module | Callable[[CrossEncoder], nn.Module]


# ----- datasets carrying their name -----
class NamedDataset(Dataset):
    """A map-style dataset whose rows also carry ``dataset_name``, so the collator and loss know their source."""

    def __init__(self, dataset: Any, name: str) -> None:
        self.dataset = dataset
        self.name = name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.dataset[index], DATASET_NAME_KEY: self.name}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        fetch = getattr(self.dataset, "__getitems__", None)
        rows = fetch(indices) if callable(fetch) else [self.dataset[index] for index in indices]
        return [{**row, DATASET_NAME_KEY: self.name} for row in rows]


class NamedIterableDataset(IterableDataset):
    """A streaming dataset whose rows also carry ``dataset_name``."""

    def __init__(self, dataset: Any, name: str) -> None:
        self.dataset = dataset
        self.name = name

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.dataset:
            yield {**row, DATASET_NAME_KEY: self.name}

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class RoundRobinStreams(IterableDataset):
    """Several streams taking turns, ``batch_size`` rows at a time, each row tagged with its stream's name.

    The rows come out flat, so a DataLoader with the same batch size cuts them back into the chunks, and accelerate's
    sharding (which deals whole batches to processes) keeps them whole: no batch ever mixes datasets. A round is
    emitted only when every stream fills its chunk, so the first stream to run short ends the pass, as
    ``round_robin`` ends when the smallest dataset runs out; a stream's last, partial batch is therefore never used.
    Proportional sampling needs lengths, which streams do not have.
    """

    def __init__(self, streams: dict[str, Any], batch_size: int) -> None:
        self.streams = [NamedIterableDataset(stream, name) for name, stream in streams.items()]
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        iterators = [iter(stream) for stream in self.streams]
        while True:
            chunks = [list(itertools.islice(iterator, self.batch_size)) for iterator in iterators]
            if any(len(chunk) < self.batch_size for chunk in chunks):
                return
            for chunk in chunks:
                yield from chunk

    def set_epoch(self, epoch: int) -> None:
        for stream in self.streams:
            stream.set_epoch(epoch)


def check_streaming_dict(datasets: Any, args: CrossEncoderTrainingArguments) -> bool:
    """Whether ``datasets`` is a dict of streams; refuse what cannot be trained on before any step runs."""
    if not isinstance(datasets, dict):
        return False
    streaming = [name for name, part in datasets.items() if _is_streaming(part)]
    if not streaming:
        return False
    mapped = [name for name in datasets if name not in streaming]
    if mapped:
        raise ConfigError(
            f"Datasets {streaming} stream and {mapped} do not; train on all map-style Datasets or all streams "
            "(Dataset.to_iterable_dataset() turns a Dataset into a stream)."
        )
    if args.multi_dataset_batch_sampler != MultiDatasetBatchSamplers.ROUND_ROBIN:
        raise ConfigError(
            f"multi_dataset_batch_sampler={args.multi_dataset_batch_sampler.value!r} draws batches in proportion to "
            f"dataset sizes, and the streaming datasets {streaming} have no size; set "
            "multi_dataset_batch_sampler='round_robin' (streams take turns until the first one runs out)."
        )
    if args.max_steps <= 0:
        raise ConfigError(f"Streaming datasets {streaming} have no length, so set max_steps to a positive number.")
    return True


class ConcatNamedDataset(Dataset):
    """Several datasets end to end; a batch's indices all fall in one of them (see MultiDatasetBatchSampler)."""

    def __init__(self, datasets: dict[str, Any]) -> None:
        self.parts = [NamedDataset(dataset, name) for name, dataset in datasets.items()]
        self.offsets = [0]
        for part in self.parts:
            self.offsets.append(self.offsets[-1] + len(part))

    def __len__(self) -> int:
        return self.offsets[-1]

    def _locate(self, index: int) -> tuple[int, int]:
        part = bisect.bisect_right(self.offsets, index) - 1
        return part, index - self.offsets[part]

    def __getitem__(self, index: int) -> dict[str, Any]:
        part, local = self._locate(index)
        return self.parts[part][local]

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        located = [self._locate(index) for index in indices]
        parts = {part for part, _ in located}
        if len(parts) == 1:
            return self.parts[located[0][0]].__getitems__([local for _, local in located])
        return [self.parts[part][local] for part, local in located]


def _is_streaming(dataset: Any) -> bool:
    return isinstance(dataset, IterableDataset)


def _with_name(dataset: Any, name: str | None) -> Any:
    if name is None:
        return dataset
    return NamedIterableDataset(dataset, name) if _is_streaming(dataset) else NamedDataset(dataset, name)


# ----- routing the loss through the DDP wrapper -----
class ThroughWrapper(nn.Module):
    """The CrossEncoder as a loss holds it under DistributedDataParallel: its calls go through the wrapper.

    DDP synchronises gradients only for forward passes made through the wrapper, but a loss is built around the bare
    CrossEncoder. When the trainer first sees the model wrapped, each loss's ``model`` is swapped, once, for this
    stand-in: ``model(**features)`` and ``model.score_pairs(pairs)`` run through the wrapper, and everything else
    (tokenizer, ``num_labels``, ``device``, ...) is the CrossEncoder's own. Training's end swaps the model back.
    """

    def __init__(self, wrapper: nn.Module, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "wrapper", wrapper)  # not submodules: their parameters stay the model's
        object.__setattr__(self, "inner", model)

    def forward(self, **features: torch.Tensor) -> torch.Tensor:
        return self.wrapper(**features)

    def score_pairs(self, pairs: Sequence[Any]) -> torch.Tensor:
        return self.wrapper(**self.inner.tokenize(pairs))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "inner"), name)


def _adapt_model(model: nn.Module) -> None:
    """Let transformers enable activation checkpointing on the CrossEncoder by delegating to its inner model."""
    inner = getattr(model, "model", None)
    if not hasattr(model, "activation_checkpointing_enable") and hasattr(inner, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable = inner.activation_checkpointing_enable


class _ReseedSamplerCallback(TrainerCallback):
    """Sets the sampler's epoch at each epoch start, also where accelerate's wrappers hide it from transformers."""

    def __init__(self, trainer: CrossEncoderTrainer) -> None:
        self._trainer = weakref.ref(trainer)

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        sampler = getattr(self._trainer(), "_train_batch_sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-9)))


class CrossEncoderTrainer(Trainer):
    """Trains a :class:`CrossEncoder` with a ranking loss; evaluators run at every evaluation.

    Args:
        model: the CrossEncoder to train (or give ``model_init`` for a hyperparameter search).
        args: training arguments; defaults write to ``checkpoints/``.
        train_dataset / eval_dataset: a ``Dataset``, a ``DatasetDict`` (several datasets, batches never mixed) or an
            ``IterableDataset`` (streaming; set ``max_steps``). Text columns, in order, are the loss inputs. A dict of
            streams trains with ``multi_dataset_batch_sampler="round_robin"`` only (see ``RoundRobinStreams``).
        loss: a loss module, a function of the model returning one (needed with ``model_init``), or a dict of either
            keyed by dataset name. Default: BinaryCrossEntropyLoss for a one-output model, CrossEntropyLoss otherwise.
            A loss may return a dict of components: they are summed, and each is logged as ``loss_<name>``.
        evaluator: an evaluator or a list of them (run as a SequentialEvaluator) called at every evaluation as
            ``evaluator(model, output_path=..., epoch=..., steps=...)``; results are logged with the ``eval_`` prefix
            and can be ``metric_for_best_model``.
    """

    loss_is_scaled_for_ga = False  # our losses return per-batch means

    def __init__(
        self,
        model: CrossEncoder | None = None,
        args: CrossEncoderTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: LossSpec | dict[str, LossSpec] | None = None,
        evaluator: Evaluator | Sequence[Evaluator] | None = None,
        data_collator: Callable | None = None,
        callbacks: list[TrainerCallback] | None = None,
        model_init: Callable[..., CrossEncoder] | None = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = CrossEncoderTrainingArguments(output_dir="checkpoints")
        if not isinstance(args, CrossEncoderTrainingArguments):
            raise ConfigError(
                f"CrossEncoderTrainer needs CrossEncoderTrainingArguments, got {type(args).__name__}: plain "
                "TrainingArguments would drop the text columns and lack the batch sampler settings."
            )
        args.remove_unused_columns = False
        self._loss_spec = loss
        self.loss: Any = None
        self.evaluator = self._as_evaluator(evaluator)
        self._check_loss_names(loss, train_dataset, eval_dataset)
        check_streaming_dict(train_dataset, args)
        self._evaluator_pending = False
        self._evaluator_prefix = "eval"
        self._components: dict[str, dict[str, list]] = {"train": {}, "eval": {}}
        self._train_batch_sampler: Any = None

        # An evaluator alone is a valid evaluation target; Trainer would demand an eval_dataset.
        strategy = args.eval_strategy
        bypass = eval_dataset is None and self.evaluator is not None and strategy != "no"
        if bypass:
            args.eval_strategy = "no"
        try:
            super().__init__(
                model=model,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                data_collator=data_collator or CrossEncoderDataCollator(),
                processing_class=getattr(model, "tokenizer", None),
                model_init=model_init,
                callbacks=callbacks,
                **kwargs,
            )
        finally:
            if bypass:
                args.eval_strategy = strategy
        if self.processing_class is None:
            self.processing_class = self.callback_handler.processing_class = getattr(self.model, "tokenizer", None)
        if model is not None:
            _adapt_model(self.model)
            self.loss = self._resolve_loss(self.model)
        self._check_layerwise_decay()
        self.card_collector = ModelCardCallback(self)
        self.add_callback(self.card_collector)
        self.add_callback(_ReseedSamplerCallback(self))

    # ----- construction helpers -----
    @staticmethod
    def _as_evaluator(evaluator: Evaluator | Sequence[Evaluator] | None) -> Evaluator | None:
        if evaluator is None or callable(evaluator):
            return evaluator
        if isinstance(evaluator, (list, tuple)):
            from rerank_lib.evaluation import SequentialEvaluator

            return SequentialEvaluator(list(evaluator))
        raise ConfigError(f"evaluator must be an evaluator or a list of evaluators; got {type(evaluator).__name__}.")

    @staticmethod
    def _check_loss_names(loss: Any, train_dataset: Any, eval_dataset: Any) -> None:
        """A loss dict must name a loss for every dataset it will see, and only datasets with names can use it."""
        if not isinstance(loss, dict):
            return
        if not loss:
            raise ConfigError("The loss dict is empty; give one loss per dataset name.")
        names: list[str] = []
        for role, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            if dataset is None:
                continue
            if not isinstance(dataset, dict):
                raise ConfigError(
                    f"loss is a dict keyed by dataset name ({sorted(loss)}), so {role} must be a DatasetDict "
                    f"(or dict of datasets) with those names; got a single {type(dataset).__name__}."
                )
            names += [name for name in dataset if name not in names]
        missing = [name for name in names if name not in loss]
        if missing:
            raise ConfigError(f"The loss dict has no loss for dataset(s) {missing}; its keys are {sorted(loss)}.")

    def _resolve_loss(self, model: nn.Module) -> Any:
        spec = self._loss_spec
        if spec is None:
            from rerank_lib.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

            return BinaryCrossEntropyLoss(model) if model.num_labels == 1 else CrossEntropyLoss(model)
        if isinstance(spec, dict):
            return {name: self._build_loss(item, model, name) for name, item in spec.items()}
        return self._build_loss(spec, model, None)

    @staticmethod
    def _build_loss(spec: Any, model: nn.Module, name: str | None) -> nn.Module:
        where = f"loss[{name!r}]" if name is not None else "loss"
        if isinstance(spec, nn.Module):
            if getattr(spec, "model", model) is not model:
                logger.warning("%s was built for another model than the one being trained.", where)
            return spec
        if callable(spec):
            built = spec(model)
            if not callable(built):
                raise ConfigError(f"{where}: the loss function returned {type(built).__name__}, not a loss.")
            return built
        raise ConfigError(f"{where} must be a loss module or a function of the model; got {type(spec).__name__}.")

    def call_model_init(self, trial: Any = None) -> nn.Module:
        """A fresh model per trial, and losses rebuilt for it (a loss holds the model it trains)."""
        specs = self._loss_spec.values() if isinstance(self._loss_spec, dict) else [self._loss_spec]
        if any(isinstance(spec, nn.Module) for spec in specs):
            raise ConfigError(
                "With model_init each trial builds a new model, so give the loss as a function of the model, "
                "e.g. loss=lambda model: BinaryCrossEntropyLoss(model)."
            )
        model = super().call_model_init(trial)
        _adapt_model(model)
        self.loss = self._resolve_loss(model)
        return model

    # ----- data -----
    def _data_seed(self) -> int:
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def _batch_sampler_for(self, dataset: Any, seed: int, batch_size: int, drop_last: bool) -> Any:
        valid_labels = getattr(self.data_collator, "valid_label_columns", LABEL_COLUMNS)
        tokenizer = getattr(self.model, "tokenizer", None)
        return build_batch_sampler(
            self.args.batch_sampler, dataset, batch_size, drop_last, valid_labels, seed, tokenizer=tokenizer
        )

    def _loader(self, dataset: Any, batch_sampler: Any = None, batch_size: int | None = None) -> DataLoader:
        """A DataLoader with the Trainer's worker settings, prepared by accelerate (sharded across processes)."""
        args = self.args
        params: dict[str, Any] = {
            "collate_fn": self.data_collator,
            "num_workers": args.dataloader_num_workers,
            "pin_memory": args.dataloader_pin_memory,
            "persistent_workers": args.dataloader_persistent_workers,
            "multiprocessing_context": args.dataloader_multiprocessing_context,
            "prefetch_factor": args.dataloader_prefetch_factor,
            "in_order": args.dataloader_in_order,
        }
        if batch_sampler is not None:
            params["batch_sampler"] = batch_sampler
        else:
            params.update(batch_size=batch_size, drop_last=args.dataloader_drop_last)
        if not _is_streaming(dataset):
            params["worker_init_fn"] = partial(
                seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index
            )
        return self.accelerator.prepare(DataLoader(dataset, **params))

    def get_train_dataloader(self) -> DataLoader:
        """Batches from our seeded batch sampler; several datasets interleaved batch by batch; or a stream."""
        dataset = self.train_dataset
        if dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        batch_size, drop_last, seed = self._train_batch_size, self.args.dataloader_drop_last, self._data_seed()
        if check_streaming_dict(dataset, self.args):
            self._train_batch_sampler = None
            return self._loader(RoundRobinStreams(dict(dataset), batch_size), batch_size=batch_size)
        if isinstance(dataset, dict):
            concat = ConcatNamedDataset(dict(dataset))
            samplers = [
                self._batch_sampler_for(part.dataset, seed + 1 + index, batch_size, drop_last)
                for index, part in enumerate(concat.parts)
            ]
            sampler = MultiDatasetBatchSampler(
                samplers, concat.offsets[:-1], self.args.multi_dataset_batch_sampler, seed
            )
            self._train_batch_sampler = sampler
            return self._loader(concat, batch_sampler=sampler)
        if _is_streaming(dataset):
            self._train_batch_sampler = None
            return self._loader(dataset, batch_size=batch_size)
        sampler = self._batch_sampler_for(dataset, seed, batch_size, drop_last)
        self._train_batch_sampler = sampler
        return self._loader(dataset, batch_sampler=sampler)

    def get_eval_dataloader(self, eval_dataset: str | Any = None) -> DataLoader:
        """As transformers', except that the rows of a named eval dataset carry its name (for a loss dict)."""
        if not isinstance(eval_dataset, str):
            return super().get_eval_dataloader(eval_dataset)
        name = eval_dataset
        cached = getattr(self, "_eval_dataloaders", {}).get(name)
        if cached is not None and self.args.dataloader_persistent_workers:
            return cached
        return self._get_dataloader(
            dataset=_with_name(self.eval_dataset[name], name),
            description="Evaluation",
            batch_size=self.args.eval_batch_size,
            sampler_fn=self._get_eval_sampler,
            dataloader_key=name,
        )

    # ----- optimizer -----
    def _check_layerwise_decay(self) -> None:
        """Refuse, before training starts, a layer-wise decay that a user-supplied optimizer would silently ignore."""
        if self.args.layerwise_lr_decay == 1.0:
            return
        if self.optimizer is not None or self.optimizer_cls_and_kwargs is not None:
            supplied = "optimizers" if self.optimizer is not None else "optimizer_cls_and_kwargs"
            raise ConfigError(
                f"layerwise_lr_decay builds its own parameter groups; it cannot be combined with {supplied}=."
            )

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """transformers' optimizer; with ``layerwise_lr_decay`` below 1, one parameter group per layer depth."""
        if self.optimizer is not None or self.args.layerwise_lr_decay == 1.0:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if "params" in optimizer_kwargs or "model" in optimizer_kwargs or "optimizer_dict" in optimizer_kwargs:
            raise ConfigError(
                f"layerwise_lr_decay does not work with optim={self.args.optim!r}, which groups parameters itself."
            )
        groups = layerwise_parameter_groups(
            opt_model,
            learning_rate=self.args.learning_rate,
            decay=self.args.layerwise_lr_decay,
            weight_decay=self.args.weight_decay,
            decay_parameter_names=self.get_decay_parameter_names(opt_model),
        )
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    # ----- loss -----
    def training_step(self, model: nn.Module, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        """One optimizer micro-step; with ``last_layer_first_token_only`` the last BERT layer computes [CLS] only.

        The patch covers forward and backward (gradient checkpointing recomputes the forward during backward).
        """
        if not self.args.last_layer_first_token_only or self.args.torch_compile:
            return super().training_step(model, inputs, *args, **kwargs)
        with last_layer_first_token_only(self.accelerator.unwrap_model(model)):
            return super().training_step(model, inputs, *args, **kwargs)

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
        unwrapped = self.accelerator.unwrap_model(model)
        if model is not unwrapped:
            self._route_losses_through(model, unwrapped)
        with self._prompts_for(unwrapped, dataset_name):
            loss = loss_fn(features, labels)
        if isinstance(loss, dict):
            if not loss:
                raise ConfigError(f"{type(loss_fn).__name__} returned an empty dict of loss components.")
            self._record_components("train" if unwrapped.training else "eval", loss)
            loss = sum(loss.values())
        return (loss, {}) if return_outputs else loss

    def _losses(self) -> list[nn.Module]:
        return list(self.loss.values()) if isinstance(self.loss, dict) else [self.loss]

    def _route_losses_through(self, wrapper: nn.Module, model: nn.Module) -> None:
        """Give each loss the wrapped model (once; see :class:`ThroughWrapper`)."""
        for loss in self._losses():
            held = getattr(loss, "model", None)
            if held is model or (isinstance(held, ThroughWrapper) and held.wrapper is not wrapper):
                loss.model = ThroughWrapper(wrapper, model)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """transformers' training loop; afterwards each loss holds the bare model again."""
        try:
            return super().train(*args, **kwargs)
        finally:
            for loss in self._losses():
                if isinstance(getattr(loss, "model", None), ThroughWrapper):
                    loss.model = loss.model.inner

    def _prompts_for(self, model: nn.Module, dataset_name: str | None) -> contextlib.AbstractContextManager:
        """``args.prompts`` for this batch's dataset; without them the model's own default prompts apply."""
        prompts = self.args.prompts
        if prompts is None or not hasattr(model, "using_prompts"):
            return contextlib.nullcontext()
        if isinstance(prompts, str):
            return model.using_prompts(prompt=prompts)
        if dataset_name not in prompts:
            return contextlib.nullcontext()
        chosen = prompts[dataset_name]
        if isinstance(chosen, str):
            return model.using_prompts(prompt=chosen)
        return model.using_prompts(prompt=chosen.get("query"), document_prompt=chosen.get("document"))

    def _loss_for(self, dataset_name: str | None) -> nn.Module:
        if not isinstance(self.loss, dict):
            return self.loss
        if dataset_name is None or dataset_name not in self.loss:
            raise ConfigError(f"No loss for dataset {dataset_name!r}; the loss dict has keys {sorted(self.loss)}.")
        return self.loss[dataset_name]

    def _record_components(self, phase: str, components: dict[str, torch.Tensor]) -> None:
        store = self._components[phase]
        for name, value in components.items():
            total = store.setdefault(name, [0.0, 0])
            total[0] += float(value.detach())
            total[1] += 1

    def _drain_components(self, phase: str) -> dict[str, float]:
        """Mean of each loss component since the last drain, over all processes."""
        local, self._components[phase] = self._components[phase], {}
        if self.args.world_size > 1:
            from accelerate.utils import gather_object

            merged: dict[str, list] = {}
            for part in gather_object([local]):
                for name, (total, count) in part.items():
                    slot = merged.setdefault(name, [0.0, 0])
                    slot[0] += total
                    slot[1] += count
            local = merged
        return {name: total / count for name, (total, count) in local.items() if count}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add each loss component's mean since the last one
            logs.update({f"loss_{name}": value for name, value in self._drain_components("train").items()})
        super().log(logs, start_time)

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, None, None]:
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ----- evaluation -----
    def _run_evaluator(self, metric_key_prefix: str) -> dict[str, float]:
        """The evaluator's metrics, computed once by the main process and sent to every process.

        Under data parallelism each process holds the same weights, so one evaluation suffices; every process
        receives its result, so logging, ``metric_for_best_model`` and early stopping agree across processes.
        """
        if self.evaluator is None:
            return {}
        results: Any = None
        if self.is_world_process_zero():
            output_path = os.path.join(self.args.output_dir, "eval")
            epoch = self.state.epoch if self.state.epoch is not None else -1
            model = self.accelerator.unwrap_model(self.model)
            results = self.evaluator(model, output_path=output_path, epoch=epoch, steps=self.state.global_step)
            if isinstance(results, (int, float)):  # evaluators of the old API return one score
                results = {"score": float(results)}
            results = {key: float(value) for key, value in results.items()}
        if self.args.world_size > 1:
            from accelerate.utils import broadcast_object_list

            results = broadcast_object_list([results], from_process=0)[0]
        self.card_collector.record_evaluation(self.evaluator, results)
        return {f"{metric_key_prefix}_{key}": float(value) for key, value in results.items()}

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Eval loss per eval dataset (``eval_<name>_loss`` for a DatasetDict) plus the evaluator's metrics.

        The evaluator runs once per evaluation; its metrics are logged with the first dataset's (or alone).
        """
        target = eval_dataset if eval_dataset is not None else self.eval_dataset
        named = list(target.items()) if isinstance(target, dict) else [] if target is None else [(None, target)]
        self._evaluator_pending = self.evaluator is not None
        self._evaluator_prefix = metric_key_prefix
        metrics: dict[str, float] = {}
        try:
            for name, dataset in named:
                prefix = metric_key_prefix if name is None else f"{metric_key_prefix}_{name}"
                # Our own eval datasets go by name (transformers caches their loaders by name); others wrapped.
                target_or_name = name if name is not None and eval_dataset is None else _with_name(dataset, name)
                metrics.update(super().evaluate(target_or_name, ignore_keys, prefix))
            if self._evaluator_pending:  # no eval dataset: the evaluator is the whole evaluation
                self._evaluator_pending = False
                evaluator_metrics = self._run_evaluator(metric_key_prefix)
                self.log(evaluator_metrics)
                self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, evaluator_metrics)
                metrics.update(evaluator_metrics)
        finally:
            self._evaluator_pending = False
        return metrics

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        self._components["eval"] = {}
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        components = self._drain_components("eval")
        output.metrics.update({f"{metric_key_prefix}_loss_{name}": value for name, value in components.items()})
        if self._evaluator_pending:
            self._evaluator_pending = False
            output.metrics.update(self._run_evaluator(self._evaluator_prefix))
        return output

    # ----- model card -----
    @property
    def model_card_data(self) -> ModelCardData:
        """What training collected for the model card (see ``card_collector`` for the extras)."""
        return self.card_collector.model_card_data(self.accelerator.unwrap_model(self.model), self.args)

    # ----- saving and restoring -----
    # transformers has no public hook for how weights are written: save_model() gathers a distributed model's state
    # and hands it to _save(), which checkpoints call too, so _save is where a CrossEncoder folder is written.
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Save a CrossEncoder folder. A folder that already holds other files (checkpoints, logs) keeps them."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        model = self.accelerator.unwrap_model(self.model)
        target = Path(output_dir)
        if target.is_dir() and any(target.iterdir()):
            staging = Path(tempfile.mkdtemp(prefix=".model-", dir=target))
            try:
                model.save_pretrained(staging / "model")
                for item in (staging / "model").iterdir():
                    destination = target / item.name
                    if destination.is_dir():
                        shutil.rmtree(destination)
                    os.replace(item, destination)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            model.save_pretrained(target)
        torch.save(self.args, target / "training_args.bin")

    # Nor for how they are read back: resuming calls _load_from_checkpoint() and load_best_model_at_end
    # _load_best_model(), both of which expect transformers' own file layout.
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

        if model.has_adapter:  # an adapter checkpoint holds the adapter and the head, not the frozen base
            load_adapter_weights(model.model, checkpoint)
            return
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

    # ----- Hub -----
    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Only choose the repo id: ``rerank_lib.hub`` creates the repo at the first push (no network at init)."""
        self.hub_model_id = self.args.hub_model_id or Path(self.args.output_dir).absolute().name
        self.push_in_progress = None

    def _hub_repo_id(self, token: str | None, private: bool | None) -> str:
        """The full ``namespace/name`` id, resolved once: checkpoint and model pushes must name the same repo."""
        from rerank_lib.hub import resolve_repo_id

        if self.hub_model_id is None:
            self.init_hf_repo()
        if "/" not in self.hub_model_id:
            self.hub_model_id = resolve_repo_id(self.hub_model_id, token=token, private=private)
        return self.hub_model_id

    def _hub_card_data(self, repo_id: str) -> ModelCardData:
        """The card the trainer collected, with the log so far (a mid-training push comes before ``on_train_end``)."""
        model = self.accelerator.unwrap_model(self.model)
        return self.card_collector.model_card_data(
            model, self.args, model_id=repo_id, log_history=[dict(row) for row in self.state.log_history]
        )

    def _push(self, commit_message: str, token: str | None, revision: str | None, **kwargs: Any) -> str:
        """Push the in-memory model with the trainer's model card through ``rerank_lib.hub.push_to_hub``."""
        from rerank_lib.hub import push_to_hub

        token = token if token is not None else self.args.hub_token
        private = kwargs.pop("private", self.args.hub_private_repo)
        repo_id = self._hub_repo_id(token, private)
        return push_to_hub(
            self.accelerator.unwrap_model(self.model),
            repo_id,
            token=token,
            private=private,
            commit_message=commit_message,
            revision=revision if revision is not None else self.args.hub_revision,
            card_data=self._hub_card_data(repo_id),
            **kwargs,
        )

    def _push_checkpoint_folder(self, checkpoint_folder: str, path_in_repo: str, commit_message: str) -> None:
        """Upload a whole checkpoint (optimizer, scheduler, RNG and trainer state too), so it can be resumed from.

        The pickled training arguments are uploaded without ``hub_token``: the token stays off the Hub.
        """
        import copy
        import io

        from rerank_lib.hub import push_folder

        token = self.args.hub_token
        public_args = copy.copy(self.args)
        public_args.hub_token = None
        buffer = io.BytesIO()
        torch.save(public_args, buffer)
        push_folder(
            checkpoint_folder,
            self._hub_repo_id(token, self.args.hub_private_repo),
            token=token,
            private=self.args.hub_private_repo,
            commit_message=commit_message,
            revision=self.args.hub_revision,
            replacements={"training_args.bin": buffer.getvalue()},
            path_in_repo=path_in_repo,
            token_source="hub_token" if token else "HF_TOKEN or the saved Hugging Face login",
        )

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Upload the model and the trainer's model card through ``rerank_lib.hub.push_to_hub``; main process only.

        One commit, always blocking (``blocking`` is accepted for transformers' signature). ``save_model()`` calls
        this when ``push_to_hub=True``, which is transformers' end-of-training push. Returns the commit (or PR) URL.
        """
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        if not self.is_world_process_zero():
            return None
        extra = {"private": private} if private is not None else {}
        return self._push(commit_message or "End of training", token, revision, **extra, **kwargs)

    # The per-save Hub upload (hub_strategy) has no public hook either: it goes through rerank_lib.hub here.
    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """``hub_strategy`` at each save, as transformers defines it: the model and card at the repo root; with
        ``checkpoint``/``all_checkpoints`` also the whole checkpoint under ``last-checkpoint``/``checkpoint-N``."""
        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        if self.args.save_strategy == SaveStrategy.STEPS:
            message = f"Training in progress, step {self.state.global_step}"
        else:
            message = f"Training in progress, epoch {int(self.state.epoch or 0)}"
        self._push(message, None, None)
        if self.args.hub_strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
            folder = (
                "last-checkpoint" if self.args.hub_strategy == HubStrategy.CHECKPOINT else Path(checkpoint_folder).name
            )
            self._push_checkpoint_folder(checkpoint_folder, folder, f"{message}, checkpoint")
