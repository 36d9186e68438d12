"""Pruning from the in-training dev evaluation: a trial whose dev objective trails the others' stops early.

Every ``tune.eval_steps`` optimizer steps the trainer calls :class:`DevObjectiveEvaluator`: the dev objective on a
fixed sample of each dev evaluator (``tune.eval_max_queries``), logged as ``eval_dev_objective`` (an MLflow curve of
the trial's run). :class:`PruningCallback` reports it to the optuna trial at that step and stops training when the
pruner says so; the trial then ends as pruned, its partial model discarded. :class:`TrainingTimeBudget` stops a
trial whose training outlasts ``tune.trial_max_train_seconds`` the same way, so a study can look for the best recipe
that trains within a team's time budget on its own machines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import optuna
from transformers import TrainerCallback

from rerank_lib.evaluation.base import CrossEncoderEvaluator
from tasks.dev_config import Objective
from tasks.dev_eval import score
from tasks.evaluation_suite import SuiteEvaluator

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "dev"
OBJECTIVE_KEY = f"eval_{EVALUATOR_NAME}_objective"  # how the trainer logs the objective


class DevObjectiveEvaluator(CrossEncoderEvaluator):
    """The dev objective (and each of its metrics) of the model being trained, on a sample of the dev suite."""

    def __init__(self, suite: list[SuiteEvaluator], objective: Objective) -> None:
        super().__init__(name=EVALUATOR_NAME, write_csv=False)
        self.suite = suite
        self.objective = objective
        self._primary = "objective"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        metrics = score(self.suite, model)
        used = {name: metrics[name] for name in self.objective.metrics}
        return self._finish({"objective": self.objective.value(metrics), **used}, output_path, epoch, steps)

    def get_config_dict(self) -> dict[str, Any]:
        return {"objective": self.objective.model_dump(mode="json"), "evaluators": [e.name for e in self.suite]}


class PruningCallback(TrainerCallback):
    """Reports the in-training dev objective to the optuna trial; stops training when the pruner prunes it."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pruned_at: int | None = None

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **_: Any
    ) -> Any:
        value = (metrics or {}).get(OBJECTIVE_KEY)
        if value is None:
            return control
        self.trial.report(float(value), state.global_step)
        if self.trial.should_prune():
            logger.info("Trial %d pruned at step %d (dev objective %.4f)", self.trial.number, state.global_step, value)
            self.pruned_at = state.global_step
            control.should_training_stop = True
        return control


class TrainingTimeBudget(TrainerCallback):
    """Stops training once it has run ``seconds`` (wall clock, counted from the start of training in this process).

    A trial resumed after a crash counts from its resume: the budget bounds what one attempt spends, not the sum.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started: float | None = None
        self.stopped_at: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> Any:
        self.started = self.clock()
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> Any:
        if self.started is not None and self.clock() - self.started > self.seconds:
            logger.info("Training stopped at step %d: past its budget of %.0f s", state.global_step, self.seconds)
            self.stopped_at = state.global_step
            control.should_training_stop = True
        return control
