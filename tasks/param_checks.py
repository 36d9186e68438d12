"""Checks of params that the schema cannot make alone: loss names and options, lengths against the base model.

They run when params are printed (`rerank params`), when the flow starts and at the top of the train stage, so a
wrong value fails in seconds, naming its key, instead of after data preparation or a model load.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from rerank_lib.errors import ConfigError
from tasks.base_model import resolve_base_model
from tasks.config import PipelineConfig, TrainConfig
from tasks.losses import check_loss


def base_model_positions(name: str) -> int | None:
    """The base model's position-embedding count, read from its config only; None when it cannot be read here."""
    source = resolve_base_model(name)
    folder = Path(source)
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise ConfigError(f"train.base_model: {source} has no config.json (not a model folder).")
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        if folder.is_dir():
            raise ConfigError(f"train.base_model: cannot read {folder / 'config.json'}: {error}") from error
        return None  # a Hub id that is not reachable now: the model load reports it
    positions = getattr(config, "max_position_embeddings", None)
    return positions if isinstance(positions, int) else None


def check_train_config(cfg: TrainConfig) -> None:
    """Every loss and option exists, and ``max_length`` fits the base model's position embeddings."""
    for name, spec in cfg.datasets.items():
        check_loss(f"train.datasets.{name}", spec.loss, spec.loss_options)
    positions = base_model_positions(cfg.base_model)
    if positions is not None and cfg.max_length > positions:
        raise ConfigError(
            f"train.max_length: {cfg.max_length} exceeds the {positions} position embeddings of the base model "
            f"{cfg.base_model!r}; use at most {positions}."
        )


def check_params(cfg: PipelineConfig) -> None:
    """All checks that need more than the schema, for the whole pipeline."""
    check_train_config(cfg.train)
