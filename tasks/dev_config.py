"""The ``dev`` and ``package`` sections of params: what the pipeline chooses on, and what it ships.

Two stages choose something on data: ``tune`` (a training recipe) and ``package`` (whether, and how much of, a
first-stage score is mixed into the reranker's). Both judge on ``dev``: evaluators of the same kinds as
``evaluate.suite`` that read dev splits only, so that no choice is ever made on the numbers the pipeline reports.
The objective is one dev metric or a weighted mean of several; guards refuse a candidate that falls below a
baseline (e.g. the zero-shot first stage on a general-domain dev set) whatever its objective.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tasks.config_base import StageConfig
from tasks.evaluate_config import EvaluateConfig

BASELINES = ("bm25", "bi_encoder")
REFUSED_DEV_SPLITS = frozenset({"test"})


class Guard(StageConfig):
    """``metric`` must reach ``above`` (a baseline's value of the same metric, or a number) plus ``margin``."""

    metric: str
    above: Literal["bm25", "bi_encoder"] | float
    margin: float = 0.0

    def bar(self, baselines: dict[str, dict[str, float]]) -> float | None:
        """The value the metric must reach; None when the baseline has no value for it."""
        if isinstance(self.above, str):
            value = baselines.get(self.above, {}).get(self.metric)
            return None if value is None else value + self.margin
        return float(self.above) + self.margin

    def describe(self) -> str:
        target = self.above if isinstance(self.above, str) else f"{self.above:g}"
        return f"{self.metric} >= {target}" + (f" + {self.margin:g}" if self.margin else "")


class Objective(StageConfig):
    """What a candidate is judged by: ``sum(weight * metric) / sum(weight)`` over dev metrics, and its guards."""

    metrics: dict[str, float]
    guards: list[Guard] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("the objective needs at least one dev metric")
        for metric, weight in value.items():
            if not weight > 0:
                raise ValueError(f"metrics.{metric}: a weight is above 0, got {weight}")
        return value

    def value(self, metrics: dict[str, float]) -> float:
        total = sum(self.metrics.values())
        return sum(weight * metrics[name] for name, weight in self.metrics.items()) / total


class DevConfig(EvaluateConfig):
    """Evaluators on dev splits (``suite``, as in ``evaluate``) and the ``objective`` chosen on."""

    objective: Objective

    @field_validator("suite")
    @classmethod
    def _dev_splits_only(cls, value: dict) -> dict:
        for name, spec in value.items():
            if spec.split in REFUSED_DEV_SPLITS:
                raise ValueError(
                    f"dev.suite.{name} reads the {spec.split!r} split: choices are made on dev splits only; cut a "
                    "dev split with the catalog entry's `split` rule"
                )
        return value

    @model_validator(mode="after")
    def _objective_names_dev_metrics(self) -> DevConfig:
        known = sorted(metric for metrics in self.metric_names().values() for metric in metrics)
        check_guards("dev.objective", self.objective.guards, known, self.bi_encoder)
        for metric in self.objective.metrics:
            if metric not in known:
                raise ValueError(
                    f"dev.objective.metrics: {metric!r} is not a metric of dev.suite; its metrics: {known}"
                )
        return self


def check_guards(key: str, guards: list[Guard], known: list[str], bi_encoder: str | None) -> None:
    """Each guard names a dev metric, and a bi-encoder baseline exists when a guard compares with it."""
    for index, guard in enumerate(guards):
        if guard.metric not in known:
            raise ValueError(
                f"{key}.guards[{index}].metric: {guard.metric!r} is not a dev metric; dev metrics: {known}"
            )
        if guard.above == "bi_encoder" and not bi_encoder:
            raise ValueError(f"{key}.guards[{index}] compares with the bi-encoder, but dev.bi_encoder is not set")


DEFAULT_SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


class PackageConfig(StageConfig):
    """How the package stage decides what ships (:mod:`tasks.package`).

    ``first_stage``: the score that may be mixed into the cross-encoder's (``none``: the cross-encoder always ships
    alone). Each share of ``shares`` is scored on the dev suite; the best by ``dev.objective`` whose ``guards`` hold
    ships (share 0: the cross-encoder folder alone). ``normalization`` puts both scores on one scale before the mix
    (:mod:`rerank_lib.package`): ``auto`` is ``dev-standard`` (per-pair scores, comparable across queries) for a
    bi-encoder and ``query-min-max`` (scores that rank one query's candidates) for BM25.
    """

    first_stage: Literal["bi-encoder", "bm25", "none"] = "bi-encoder"
    bi_encoder: str | None = None  # the bi-encoder mixed in; default: dev.bi_encoder (the zero-shot baseline)
    shares: list[float] = Field(default_factory=lambda: list(DEFAULT_SHARES))
    guards: list[Guard] = Field(default_factory=list)  # judged on the package at each share
    normalization: Literal["auto", "dev-standard", "query-min-max"] = "auto"

    @model_validator(mode="after")
    def _scale_fits_the_first_stage(self) -> PackageConfig:
        if self.first_stage == "bm25" and self.normalization == "dev-standard":
            raise ValueError(
                "package.normalization dev-standard does not fit first_stage bm25: BM25 scores against the candidates "
                "of each call, so no scale measured on dev fits it (use auto or query-min-max)"
            )
        return self

    def scale(self) -> str:
        """The normalization a package written now uses (``auto`` resolved for the first stage)."""
        if self.normalization != "auto":
            return self.normalization
        return "query-min-max" if self.first_stage == "bm25" else "dev-standard"

    @field_validator("shares")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if 0.0 not in value:
            raise ValueError("shares must hold 0 (the cross-encoder alone), so that not mixing is a candidate too")
        for share in value:
            if not 0.0 <= share < 1.0:
                raise ValueError(f"a share is the first stage's weight in [0, 1); got {share}")
        if len(set(value)) != len(value):
            raise ValueError(f"shares must not repeat a value: {value}")
        return sorted(value)
