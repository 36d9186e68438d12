"""Pruning: the in-training dev objective reaches the optuna trial each evaluation, a trailing trial stops, and so
does one whose training outlasts its time budget."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from transformers import TrainerCallback

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from rerank_lib.losses import ListNetLoss
from tasks.dev_config import Objective
from tasks.evaluation_suite import SuiteEvaluator
from tasks.tune_pruning import OBJECTIVE_KEY, DevObjectiveEvaluator, PruningCallback, TrainingTimeBudget
from tests.tasks.train_testkit import QUESTIONS

SAMPLES = [
    {"query": q, "positive": [p], "negative": [n, *[o for _, o, _ in QUESTIONS if o != p][:3]]} for q, p, n in QUESTIONS
]


def train_with_pruning(
    tiny_bert_dir: Path, tmp_path: Path, study: optuna.Study, *more: TrainerCallback
) -> tuple[PruningCallback, int]:
    from datasets import Dataset

    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, num_labels=1, max_length=32, device="cpu")
    lists = Dataset.from_dict(
        {"query": [q for q, _, _ in QUESTIONS], "docs": [[p, n] for _, p, n in QUESTIONS], "labels": [[1.0, 0.0]] * 6}
    )
    reranking = CrossEncoderRerankingEvaluator(SAMPLES, name="toy_dev")
    suite = [SuiteEvaluator("toy_dev", "reranking", reranking, "", len(SAMPLES), [])]
    evaluator = DevObjectiveEvaluator(suite, Objective(metrics={"toy_dev_ndcg@10": 1.0}))
    args = CrossEncoderTrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=2,
        max_steps=12,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
    )
    callback = PruningCallback(study.ask())
    trainer = CrossEncoderTrainer(model, args=args, train_dataset=lists, loss=ListNetLoss(model), evaluator=evaluator)
    for extra in (callback, *more):
        trainer.add_callback(extra)
    trainer.train()
    return callback, trainer.state.global_step


def test_each_evaluation_reports_the_dev_objective_and_nothing_is_pruned_without_a_better_trial(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=0))
    callback, steps = train_with_pruning(tiny_bert_dir, tmp_path, study)
    assert callback.pruned_at is None and steps == 12
    (trial,) = study.get_trials(deepcopy=False)
    assert sorted(trial.intermediate_values) == [3, 6, 9, 12]
    assert all(0.0 < value <= 1.0 for value in trial.intermediate_values.values())


def test_a_trial_below_the_finished_trials_median_stops_at_its_first_evaluation(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    for _ in range(2):  # finished trials whose dev objective (NDCG) was above any possible one at every step
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=1.0,
                params={"lr": 1e-3},
                distributions={"lr": FloatDistribution(1e-4, 1e-2)},
                intermediate_values={step: 1.01 for step in (3, 6, 9, 12)},
            )
        )
    callback, steps = train_with_pruning(tiny_bert_dir, tmp_path, study)
    assert callback.pruned_at == 3 and steps == 3  # training stopped there
    assert list(study.get_trials(deepcopy=False)[-1].intermediate_values) == [3]
    assert OBJECTIVE_KEY == "eval_dev_objective"


class TickingClock:
    """A clock that moves one second each time it is read: training time becomes a count of steps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_training_stops_at_the_first_step_past_its_time_budget(tiny_bert_dir: Path, tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    budget = TrainingTimeBudget(4.5, clock=TickingClock())  # read at the start, then once per step: 1 s a step
    callback, steps = train_with_pruning(tiny_bert_dir, tmp_path, study, budget)
    assert budget.stopped_at == 5 and steps == 5 and callback.pruned_at is None


def test_a_budget_training_fits_in_stops_nothing(tiny_bert_dir: Path, tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    budget = TrainingTimeBudget(12.5, clock=TickingClock())
    _, steps = train_with_pruning(tiny_bert_dir, tmp_path, study, budget)
    assert budget.stopped_at is None and steps == 12
