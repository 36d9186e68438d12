"""Scoring on the dev suite and judging by the dev objective: what the package and tune stages choose with.

A candidate (a trained cross-encoder, or a package at one share) is judged by ``dev.objective``: its weighted mean
of dev metrics, and whether every guard holds (a metric at or above a baseline's value of it, or a number). The
baselines (BM25 and the zero-shot bi-encoder on the same dev data) are scored once and shared by every candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from tasks.dev_config import Guard, Objective
from tasks.evaluation_suite import BI_ENCODER, BM25, SuiteEvaluator, build_suite
from tasks.stored_scorers import project_store, stored_bi_encoder


@dataclass
class Judgement:
    """A candidate's dev metrics, objective value and guards (each with its value, bar and whether it held)."""

    metrics: dict[str, float]
    objective: float
    guards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(guard["held"] for guard in self.guards)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"feasible": self.feasible}


def dev_bi_encoder(cfg: Any, root: Path) -> CachedScorer | None:
    """The dev suite's zero-shot bi-encoder (a baseline and a guard's bar), its scores kept in the score store."""
    if cfg.dev is None:
        return None
    return stored_bi_encoder(cfg.dev.bi_encoder, project_store(root))


def build_dev_suite(
    cfg: Any, prepared: Path, root: Path, bi_encoder: Any | None, max_queries: int | None = None
) -> list[SuiteEvaluator]:
    """The evaluators of ``dev.suite``; ``max_queries`` scores a fixed sample of each (evaluations during training)."""
    dev = cfg.dev if max_queries is None else cfg.dev.model_copy(update={"max_queries": max_queries})
    return build_suite(dev, Path(prepared), Path(root), bi_encoder, catalog=cfg.prepare.datasets)


def score(suite: list[SuiteEvaluator], scorer: Any) -> dict[str, float]:
    """A scorer's dev metrics (``<evaluator>_<metric>``, first-stage ``base_*`` numbers left out)."""
    return {key: value for evaluator in suite for key, value in evaluator(scorer).items() if "_base_" not in key}


def baselines(suite: list[SuiteEvaluator], bi_encoder: Any | None) -> dict[str, dict[str, float]]:
    """BM25's and the bi-encoder's dev metrics under the evaluators' own keys."""
    results: dict[str, dict[str, float]] = {BM25: {}, BI_ENCODER: {}}
    for evaluator in suite:
        reference = evaluator(bi_encoder if bi_encoder is not None else BM25Scorer())
        if bi_encoder is not None:
            results[BI_ENCODER].update({key: value for key, value in reference.items() if "_base_" not in key})
        if BM25 in evaluator.baselines():
            results[BM25].update(evaluator.baseline(BM25, BM25Scorer(), reference))
    return results


@dataclass
class DevBench:
    """The dev suite ready to score candidates: its evaluators, the baselines' numbers, the cached bi-encoder."""

    suite: list[SuiteEvaluator]
    baselines: dict[str, dict[str, float]]
    bi_encoder: CachedScorer | None


def dev_bench(cfg: Any, prepared: Path, root: Path, reference: dict[str, dict[str, float]] | None = None) -> DevBench:
    """Build the dev suite and score the baselines on it (``reference``: their numbers, already known)."""
    bi_encoder = dev_bi_encoder(cfg, root)
    suite = build_dev_suite(cfg, prepared, root, bi_encoder)
    return DevBench(suite, reference if reference is not None else baselines(suite, bi_encoder), bi_encoder)


def judge(
    objective: Objective, guards: list[Guard], metrics: dict[str, float], reference: dict[str, dict[str, float]]
) -> Judgement:
    """The objective of ``metrics`` and each guard against the baselines in ``reference``."""
    checked = []
    for guard in guards:
        value, bar = metrics.get(guard.metric), guard.bar(reference)
        held = value is not None and bar is not None and value >= bar
        checked.append({"guard": guard.describe(), "value": value, "bar": bar, "held": held})
    return Judgement(metrics, objective.value(metrics), checked)
