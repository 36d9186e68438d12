"""Each stage bound to the artifact layout: the one call that the CLI, DVC and the Prefect flow all make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.card import run_card
from tasks.config import PipelineConfig
from tasks.evaluate import run_evaluate
from tasks.layout import STAGE_ORDER, Layout
from tasks.package import run_package
from tasks.prepare import run_prepare
from tasks.push import run_push
from tasks.register import run_register
from tasks.train import run_train


def prepare(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_prepare(cfg.prepare, layout.root, layout.prepared)


def train(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_train(cfg.train, cfg.tracking, layout.prepared, layout.checkpoints, layout.trained_model, layout.root)


def package(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_package(cfg, layout.trained_model, layout.prepared, layout.packaged, layout.dev_dir, layout.root)


def evaluate(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_evaluate(
        cfg.evaluate, cfg.tracking, layout.packaged, layout.prepared, layout.eval_dir, layout.root, cfg.prepare.datasets
    )


def card(cfg: PipelineConfig, layout: Layout) -> Any:
    first_dataset = next(iter(cfg.train.datasets))
    hub_ids = {name: entry.hub_id for name, entry in cfg.prepare.datasets.items() if entry.hub_id}
    return run_card(
        cfg.card,
        layout.trained_model,
        layout.metrics,
        layout.model,
        prepared=layout.prepared / first_dataset,
        hub_ids=hub_ids,
        shipped=layout.packaged,
    )


def register(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_register(
        cfg.register,
        cfg.tracking,
        cfg.promote,
        layout.model,
        layout.eval_dir,
        layout.prepared,
        layout.root,
        layout.registry_record,
    )


def push(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_push(cfg.push, layout.model, layout.registry_record, layout.push_record, root=layout.root)


__all__ = ["STAGES", "STAGE_ORDER"]

STAGES: dict[str, Callable[[PipelineConfig, Layout], Any]] = {
    "prepare": prepare,
    "train": train,
    "package": package,
    "evaluate": evaluate,
    "card": card,
    "register": register,
    "push": push,
}
