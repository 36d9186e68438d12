"""Each stage bound to the artifact layout: the one call that the CLI, DVC and the Prefect flow all make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.card import run_card
from tasks.config import PipelineConfig
from tasks.evaluate import run_evaluate
from tasks.layout import Layout
from tasks.prepare import run_prepare
from tasks.register import run_register
from tasks.train import run_train

STAGE_ORDER = ("prepare", "train", "evaluate", "card", "register")


def prepare(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_prepare(cfg.prepare, layout.raw / "wikiqa", layout.prepared)


def train(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_train(cfg.train, layout.prepared, layout.checkpoints, layout.trained_model)


def evaluate(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_evaluate(cfg.evaluate, layout.trained_model, layout.prepared, layout.eval_dir)


def card(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_card(cfg.card, layout.trained_model, layout.metrics, layout.model)


def register(cfg: PipelineConfig, layout: Layout) -> Any:
    params = cfg.model_dump(mode="json")
    return run_register(cfg.register, params, layout.model, layout.eval_dir, layout.root, layout.registry_record)


STAGES: dict[str, Callable[[PipelineConfig, Layout], Any]] = {
    "prepare": prepare,
    "train": train,
    "evaluate": evaluate,
    "card": card,
    "register": register,
}
