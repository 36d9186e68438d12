"""The ``tune`` section of params: a search over the recipe, judged on ``dev`` (see :mod:`tasks.tune`).

``space`` maps a params key, dotted as ``--set`` writes it (``train.learning_rate``,
``prepare.datasets.<name>.mining.num_negatives``), to a range or a list of choices. A key that is not a params key
(e.g. ``route``) holds ``variants``: named bundles of settings, one of which a trial takes, so the training route
itself (full fine-tuning, layer-wise learning-rate decay, distillation from the starting model, ...) is searched
like a number.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from tasks.config_base import StageConfig

STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# The sections a trial may change; the others describe how it is judged, tracked or shipped.
TUNABLE_SECTIONS = ("prepare", "train")


class FloatRange(StageConfig):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("a log range needs low > 0 and no step")
        return self

    def values(self) -> list[Any]:
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        """Whether a trial could draw ``value`` (within the range, on its step)."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not self.low <= value <= self.high:
            return False
        steps = (value - self.low) / self.step if self.step is not None else 0.0
        return abs(steps - round(steps)) < 1e-9


class IntRange(StageConfig):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def values(self) -> list[Any]:
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        return type(value) is int and self.low <= value <= self.high and (value - self.low) % self.step == 0


class Categorical(StageConfig):
    type: Literal["categorical"]
    choices: list[str | int | float | bool | None]

    @field_validator("choices")
    @classmethod
    def _two_or_more(cls, value: list[Any]) -> list[Any]:
        if len(value) < 2 or len(set(map(repr, value))) != len(value):
            raise ValueError(f"choices needs two or more distinct values; got {value}")
        return value

    def values(self) -> list[Any]:
        return list(self.choices)

    def contains(self, value: Any) -> bool:
        return any(type(choice) is type(value) and choice == value for choice in self.choices)


class Variants(StageConfig):
    """Named bundles of ``{dotted key: value}``; a trial takes one (its name is what the sampler sees)."""

    type: Literal["variants"]
    variants: dict[str, dict[str, Any]]

    @field_validator("variants")
    @classmethod
    def _two_or_more(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if len(value) < 2:
            raise ValueError("variants needs two or more named bundles")
        return value

    def values(self) -> list[Any]:
        return list(self.variants)


SpaceParam = Annotated[FloatRange | IntRange | Categorical | Variants, Field(discriminator="type")]


class SamplerConfig(StageConfig):
    """``tpe`` (the default: learns from finished trials), ``random``, or ``grid`` (every combination once)."""

    kind: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = 42
    startup_trials: int = Field(default=5, ge=0)  # TPE: random trials before it models the space


class PrunerConfig(StageConfig):
    """Stops a trial whose in-training dev objective trails the others' at the same step (``none``: never).

    ``percentile`` lets a trial go on while it is within the best ``keep_percent`` of the complete trials at the step
    (``median`` keeps 50): on a noisy in-training objective (a sample of each dev set) keeping more stops only clearly
    worse trials."""

    kind: Literal["median", "percentile", "hyperband", "none"] = "median"
    startup_trials: int = Field(default=3, ge=0)  # median, percentile: trials that run to the end before any is pruned
    warmup_steps: int = Field(default=0, ge=0)  # median, percentile: training steps before a trial can be pruned
    keep_percent: float = Field(default=75.0, gt=0, le=100)  # percentile: the best share of trials at a step goes on


class TuneConfig(StageConfig):
    """One optuna study: ``trials`` trials (``timeout`` seconds at most) over ``space``, judged on ``dev``."""

    study: str
    trials: int = Field(gt=0)
    timeout: float | None = Field(default=None, gt=0)  # seconds; no new trial starts after it
    concurrency: int = Field(default=1, gt=0)  # trials at once in the Prefect flow (a work pool may run them apart)
    storage: str | None = None  # an RDB URL; default: sqlite:///artifacts/tune/<study>.db
    scorer: Literal["cross_encoder", "package"] = "cross_encoder"  # what the objective judges
    eval_steps: int | None = Field(default=None, gt=0)  # dev objective every N steps during training, for pruning
    eval_max_queries: int | None = Field(default=30, gt=0)  # of each dev evaluator, for the in-training objective
    heartbeat_seconds: int = Field(default=60, gt=0)  # a trial silent for twice this long is retried
    trial_max_train_seconds: float | None = Field(default=None, gt=0)  # a trial training longer is pruned
    enqueue_params: bool = True  # the first trial trains the params as they are: the recipe a study must beat
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    space: dict[str, SpaceParam]

    @field_validator("study")
    @classmethod
    def _study_name(cls, value: str) -> str:
        if not STUDY_NAME.match(value):
            raise ValueError(f"study {value!r} must be a plain file name (letters, digits, . _ -)")
        return value

    @field_validator("space")
    @classmethod
    def _space_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("the space needs at least one parameter")
        for key, param in value.items():
            keys = list(param.variants.values()) if isinstance(param, Variants) else [{key: None}]
            for dotted in (name for bundle in keys for name in bundle):
                if dotted.split(".")[0] not in TUNABLE_SECTIONS or "." not in dotted:
                    raise ValueError(
                        f"space.{key}: {dotted!r} is not a key of a section a trial may change {TUNABLE_SECTIONS}"
                    )
                if ".split." in f"{dotted}." or dotted.endswith(".split"):
                    raise ValueError(f"space.{key}: {dotted!r} would move data between train and dev splits")
        return value

    @model_validator(mode="after")
    def _grid_is_finite(self) -> TuneConfig:
        if self.sampler.kind == "grid":
            for key, param in self.space.items():
                if isinstance(param, FloatRange) and param.step is None:
                    raise ValueError(f"space.{key}: the grid sampler needs a step (or choices) for every range")
        return self
