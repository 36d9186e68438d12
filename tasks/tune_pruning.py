"""Pruning from the in-training dev evaluation: a trial whose dev objective trails the others' stops early.

Every ``tune.eval_steps`` optimizer steps the trainer calls :class:`DevObjectiveEvaluator`: the dev objective on a
fixed sample of each dev evaluator (``tune.eval_max_queries``), logged as ``eval_dev_objective`` (an MLflow curve of
the trial's run). :class:`PruningCallback` reports it to the optuna trial at that step and stops training when the
pruner says so; the trial then ends as pruned, its partial model discarded.
"""

from __future__ import annotations

import logging
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
