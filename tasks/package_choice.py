"""Whether to mix the first stage's score into the cross-encoder's, and how much: chosen on the dev suite.

Every share of ``package.shares`` is scored on ``dev.suite`` (share 0 is the cross-encoder alone) and judged by
``dev.objective`` with the guards of ``dev.objective`` and ``package``. The best objective among shares whose guards
hold wins (a tie goes to the smaller share: less of the first stage); when no share passes every guard, the best
objective wins and the choice says so. The cross-encoder and the first stage each score the dev pairs once: shares
only re-mix cached scores. For a ``dev-standard`` package the mean and standard deviation of each score over the dev
candidates are measured first, from those same scores, and ship in the package (``scales``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.model import CrossEncoder
from rerank_lib.package import (
    DEV_STANDARD,
    CrossEncoderLogits,
    PackageSpec,
    RerankPackage,
    Sigmoid,
    standard_scale,
)
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from rerank_lib.scorer import PairScorer
from tasks.dev_eval import DevBench, Judgement, dev_bench, judge, score
from tasks.stored_scorers import project_store, stored_bi_encoder


@dataclass
class ShareChoice:
    """The share chosen, why, and every share's judgement beside the baselines."""

    share: float
    reason: str
    judgements: dict[float, Judgement]
    baselines: dict[str, dict[str, float]]
    first_stage: str
    bi_encoder: str | None = None  # the bi-encoder a bi-encoder first stage ships with
    normalization: str = "query-min-max"
    scales: dict[str, list[float]] | None = None  # dev-standard: each score's [mean, std] over the dev candidates
    notes: list[str] = field(default_factory=list)

    def spec(self) -> PackageSpec:
        """What a package at the chosen share records."""
        return PackageSpec(
            self.share, self.first_stage, self.bi_encoder, normalization=self.normalization, scales=self.scales
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "reason": self.reason,
            "first_stage": self.first_stage,
            "bi_encoder": self.bi_encoder,
            "normalization": self.normalization,
            "scales": self.scales,
            "shares": {str(share): judgement.as_dict() for share, judgement in self.judgements.items()},
            "baselines": self.baselines,
        }


def package_bi_encoder(cfg: Any) -> str | None:
    """The bi-encoder a bi-encoder first stage mixes in: ``package.bi_encoder``, else the dev baseline's."""
    return cfg.package.bi_encoder or (cfg.dev.bi_encoder if cfg.dev is not None else None)


def first_stage_scorer(cfg: Any, dev_bi: CachedScorer | None, root: Path) -> Any:
    """The first stage the package would mix in (the dev baseline's cached scores when it is the same model)."""
    if cfg.package.first_stage == "bm25":
        return BM25Scorer()
    name = package_bi_encoder(cfg)
    if dev_bi is not None and name == cfg.dev.bi_encoder:
        return dev_bi
    return stored_bi_encoder(str(name), project_store(root))


class RecordingScorer(PairScorer):
    """Another scorer's scores, passed through and kept: the dev scores a package's scale is measured on."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self.seen: list[np.ndarray] = []

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        values = self.scorer.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar)
        self.seen.append(np.asarray(values, dtype=np.float64))
        return self.seen[-1]


def dev_scales(bench: DevBench, logits: Any, first: Any) -> dict[str, list[float]]:
    """``[mean, std]`` of the cross-encoder's logits and of the first stage's scores over the dev suite's candidates."""
    scales = {}
    for part, scorer in (("cross_encoder", logits), ("first_stage", first)):
        recorder = RecordingScorer(scorer)
        score(bench.suite, recorder)
        scales[part] = standard_scale(np.concatenate(recorder.seen))
    return scales


def pick(judgements: dict[float, Judgement]) -> tuple[float, str]:
    """The best feasible share (ties: the smaller), else the best share, with the reason in words."""
    feasible = {share: j for share, j in judgements.items() if j.feasible}
    pool = feasible or judgements
    best = max(sorted(pool), key=lambda share: pool[share].objective)  # max keeps the first (smallest) of a tie
    what = "the cross-encoder alone" if best == 0 else f"share {best:g} of the first stage"
    if feasible:
        return best, f"{what}: the best dev objective ({pool[best].objective:.4f}) of the shares whose guards hold"
    return best, f"{what}: no share holds every guard; the best dev objective ({pool[best].objective:.4f})"


def package_guards(cfg: Any) -> list[Any]:
    """The guards a share is judged by: the dev objective's, then the package's own."""
    return [*cfg.dev.objective.guards, *cfg.package.guards]


def choose_share(
    cfg: Any, trained: Path, prepared: Path, root: Path, logits: Any | None = None, bench: DevBench | None = None
) -> ShareChoice:
    """Score each share of ``package.shares`` on the dev suite and pick one.

    ``logits`` (the cross-encoder's, cached) and ``bench`` (the dev suite with its baselines) are built when not given.
    """
    bench = bench or dev_bench(cfg, prepared, root)
    logits = logits or CachedScorer(CrossEncoderLogits(CrossEncoder(str(trained))))
    first_stage, normalization = cfg.package.first_stage, cfg.package.scale()
    first = first_stage_scorer(cfg, bench.bi_encoder, root)
    scales = dev_scales(bench, logits, first) if normalization == DEV_STANDARD else None
    guards = package_guards(cfg)
    judgements = {}
    for share in cfg.package.shares:
        spec = None if share == 0 else PackageSpec(share, first_stage, normalization=normalization, scales=scales)
        scorer = Sigmoid(logits) if spec is None else RerankPackage(logits, first, spec)
        judgements[share] = judge(cfg.dev.objective, guards, score(bench.suite, scorer), bench.baselines)
    share, reason = pick(judgements)
    bi_encoder = package_bi_encoder(cfg) if first_stage == "bi-encoder" else None
    return ShareChoice(share, reason, judgements, bench.baselines, first_stage, bi_encoder, normalization, scales)
