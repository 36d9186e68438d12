"""Fill ``ModelCardData`` from the objects training already has: datasets, losses, arguments, trainer state.

The trainer (or a pipeline stage) calls these so no card text is ever written by hand. Nothing here trains or
evaluates; it only reads.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rerank_lib.model_card.data import ColumnStats, DatasetInfo, EvaluationInfo, LossInfo, ModelCardData

if TYPE_CHECKING:
    from rerank_lib.model import CrossEncoder

STATS_ROWS = 1000
EXAMPLE_ROWS = 3
# Arguments that describe the machine or the output location, not the training recipe, or that hold secrets.
SKIPPED_ARGUMENTS = frozenset(
    {
        "output_dir",
        "logging_dir",
        "run_name",
        "hub_model_id",
        "overwrite_output_dir",
        "local_rank",
        "_n_gpu",
        "deepspeed_plugin",
    }
)
SECRET_WORDS = ("token", "secret", "password", "api_key")
HIDDEN_COLUMNS = frozenset({"dataset_name"})


def is_secret_key(name: str) -> bool:
    """Keys like ``hub_token`` never reach a card, even when empty."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _kind(value.item())
    return "other"


def _measure(value: Any, kind: str) -> float | None:
    if kind == "string":
        return float(len(value))
    if kind == "list":
        return float(len(value))
    if kind in ("int", "float", "bool"):
        number = float(value.item() if hasattr(value, "item") else value)
        return number if math.isfinite(number) else None
    return None


def column_stats(rows: Iterable[Mapping[str, Any]], max_rows: int = STATS_ROWS) -> dict[str, ColumnStats]:
    """Type and min/mean/max (string length, list length or value) of each column over the first ``max_rows``."""
    values: dict[str, list[Any]] = {}
    for row in itertools.islice(rows, max_rows):
        for column, value in row.items():
            if column not in HIDDEN_COLUMNS:
                values.setdefault(column, []).append(value)
    stats: dict[str, ColumnStats] = {}
    for column, column_values in values.items():
        kinds = {_kind(value) for value in column_values if value is not None}
        if kinds == {"int", "float"}:
            kinds = {"float"}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        numbers = [m for m in (_measure(v, kind) for v in column_values if v is not None) if m is not None]
        if numbers:
            stats[column] = ColumnStats(kind, min(numbers), sum(numbers) / len(numbers), max(numbers), len(numbers))
        else:
            stats[column] = ColumnStats(kind, rows=len(column_values))
    return stats


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of an example value (numpy/torch scalars to Python, long lists shortened)."""
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value[:10]]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _indexable(dataset: Any) -> bool:
    """Map-style (a length and rows by index), as opposed to streaming: only the first can say its size up front."""
    return hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")


def first_rows(dataset: Any, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows as dicts; a streaming dataset (or any iterable without a length) is read only that far."""
    if not _indexable(dataset):
        take = getattr(dataset, "take", None)
        rows = take(limit) if callable(take) else iter(dataset)
        return [dict(row) for row in itertools.islice(rows, limit)]
    count = min(len(dataset), limit)
    if hasattr(dataset, "select") and hasattr(dataset, "to_list"):
        return dataset.select(range(count)).to_list()
    return [dict(dataset[index]) for index in range(count)]


def dataset_info(
    name: str,
    dataset: Any,
    hub_id: str | None = None,
    split: str = "train",
    loss: str | None = None,
    max_stats_rows: int = STATS_ROWS,
) -> DatasetInfo:
    """Describe a dataset (map-style, streaming) or a list of row dicts: size, columns, statistics, three examples.

    A streaming dataset has no length: its size is the number of rows read here, which a caller that trains on it
    corrects afterwards.
    """
    rows = first_rows(dataset, max_stats_rows)
    size = len(dataset) if _indexable(dataset) else len(rows)
    names = list(dataset.column_names) if getattr(dataset, "column_names", None) else list(rows[0]) if rows else []
    columns = [c for c in names if c not in HIDDEN_COLUMNS]
    examples = [{column: _plain(row[column]) for column in columns if column in row} for row in rows[:EXAMPLE_ROWS]]
    return DatasetInfo(name, size, columns, examples, column_stats(rows, max_stats_rows), hub_id, split, loss)


def loss_info(loss: Any, dataset: str | None = None) -> LossInfo:
    """A loss module's name, ``get_config_dict()`` and ``citation``."""
    config = loss.get_config_dict() if hasattr(loss, "get_config_dict") else {}
    config = {key: _plain(value) for key, value in config.items() if not is_secret_key(key)}
    return LossInfo(type(loss).__name__, config, str(getattr(loss, "citation", "") or ""), dataset)


def _normalise(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _normalise(dataclasses.asdict(value))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def diff_hyperparameters(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that differ from ``defaults`` (or have no default)."""
    missing = object()
    return {key: value for key, value in values.items() if defaults.get(key, missing) != value}


def _field_default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None if spec.default is dataclasses.MISSING else spec.default


def _comparable(name: str, value: Any) -> Any:
    """Values that ``__post_init__`` rewrites without changing their meaning compare equal to the field default."""
    if name == "report_to" and value in ("none", ["none"]):
        value = []
    if name == "accelerator_config" and isinstance(value, dict):
        from transformers.trainer_pt_utils import AcceleratorConfig

        default = {
            **_normalise(AcceleratorConfig(dispatch_batches=False).to_dict()),
            **{key: item for key, item in value.items() if key == "use_configured_state"},
        }
        value = None if value == default else value  # the trainer's default (see CrossEncoderTrainingArguments)
    return None if value in (None, False, "", [], {}) else value


def hyperparameters_from_args(args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(all, non-default) hyperparameters of a ``TrainingArguments`` dataclass; paths and secrets left out.

    Defaults are the declared field defaults, not a default-constructed arguments object: building one in the middle
    of training resets accelerate's state. Used by the trainer's card collector and by ``card_data_from_trainer``.
    """
    values: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for spec in dataclasses.fields(args):
        name = spec.name
        if name in SKIPPED_ARGUMENTS or name.startswith("_") or is_secret_key(name) or not spec.init:
            continue
        value = _normalise(getattr(args, name))
        values[name] = value
        if _comparable(name, value) != _comparable(name, _normalise(_field_default(spec))):
            changed[name] = value
    return values, changed


def best_step(state: Any) -> int | None:
    """The global step of the kept checkpoint, from ``best_global_step`` or the checkpoint folder's name."""
    step = getattr(state, "best_global_step", None)
    if isinstance(step, int):
        return step
    checkpoint = getattr(state, "best_model_checkpoint", None) or ""
    match = re.search(r"checkpoint-(\d+)$", str(checkpoint).rstrip("/"))
    return int(match.group(1)) if match else None


def evaluation_info(evaluator: Any, results: Mapping[str, float], dataset_id: str | None = None) -> EvaluationInfo:
    """Card entry for one evaluator call: prefix stripped, ``base_*`` split into the baseline."""
    name = str(getattr(evaluator, "name", "") or "")
    prefix = f"{name}_" if name else ""
    config = evaluator.get_config_dict() if hasattr(evaluator, "get_config_dict") else {}
    return EvaluationInfo.from_results(
        type(evaluator).__name__,
        name or "evaluation",
        dict(results),
        prefix=prefix,
        primary_metric=getattr(evaluator, "primary_metric", None),
        dataset_id=dataset_id,
        config={key: _normalise(value) for key, value in config.items()},
    )


def card_data_from_model(model: CrossEncoder, model_name: str | None = None, **fields: Any) -> ModelCardData:
    """The minimal card of a model that has no collected card data: what its files say about it."""
    from rerank_lib.activation import activation_to_path

    source = str(getattr(model.config, "_name_or_path", "") or model.model_name_or_path)
    base = source if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not source.startswith(".") else ""
    return ModelCardData(
        model_name=model_name or f"CrossEncoder based on {base or 'a local model'}",
        base_model=base,
        num_labels=model.num_labels,
        max_length=model.max_length,
        activation_fn=activation_to_path(model.activation_fn),
        **fields,
    )


def _named_datasets(dataset: Any, default_name: str) -> list[tuple[str, Any]]:
    if dataset is None:
        return []
    if isinstance(dataset, Mapping):  # DatasetDict or {name: dataset}
        return list(dataset.items())
    return [(default_name, dataset)]


def card_data_from_trainer(
    trainer: Any,
    model_name: str,
    evaluations: list[EvaluationInfo] | None = None,
    dataset_ids: Mapping[str, str] | None = None,
    **fields: Any,
) -> ModelCardData:
    """Everything a finished ``CrossEncoderTrainer`` knows: data, losses, arguments, logs and the best step."""
    dataset_ids = dict(dataset_ids or {})
    base = card_data_from_model(trainer.model, model_name)
    losses = trainer.loss if isinstance(trainer.loss, Mapping) else {None: trainer.loss}
    loss_names = {name: type(loss).__name__ for name, loss in losses.items()}
    train = [
        dataset_info(name, data, dataset_ids.get(name), "train", loss_names.get(name) if len(losses) > 1 else None)
        for name, data in _named_datasets(trainer.train_dataset, "train")
    ]
    evaluation = [
        dataset_info(name, data, dataset_ids.get(name), "eval")
        for name, data in _named_datasets(trainer.eval_dataset, "eval")
    ]
    all_args, non_default = hyperparameters_from_args(trainer.args)
    values: dict[str, Any] = {
        "datasets": train,
        "eval_datasets": evaluation,
        "losses": [loss_info(loss, name) for name, loss in losses.items()],
        "evaluations": list(evaluations or []),
        "hyperparameters": all_args,
        "non_default_hyperparameters": non_default,
        "log_history": [dict(row) for row in trainer.state.log_history],
        "best_step": best_step(trainer.state),
        "global_step": int(trainer.state.global_step),
    }
    values.update(fields)
    return dataclasses.replace(base, **values)
