"""The study: counting trials across retries, the best trial by its guards, refusing a changed resume, best.yaml."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState, create_trial

from rerank_lib.errors import ConfigError
from tasks.config import load_params
from tasks.tune_config import TuneConfig
from tasks.tune_result import write_result
from tasks.tune_study import best_trial, enqueue_params, finished, make_pruner, open_study

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True}}
DISTRIBUTION = {"train.learning_rate": FloatDistribution(1e-5, 1e-4, log=True)}


def tune(**values: object) -> TuneConfig:
    return TuneConfig(**{"study": "s", "trials": 3, "space": SPACE, **values})


def add(study: optuna.Study, state: TrialState, value: float | None = None, feasible: bool = True) -> None:
    attrs = {"feasible": feasible, "settings": {"train.learning_rate": 3e-5}, "metrics": {"dev_ndcg@10": value}}
    study.add_trial(
        create_trial(
            state=state,
            value=value,
            params={"train.learning_rate": 3e-5},
            distributions=DISTRIBUTION,
            user_attrs=attrs,
        )
    )


def test_a_died_and_retried_trial_counts_once(tmp_path: Path) -> None:
    study = open_study(tune(), tmp_path, {"a": 1})
    add(study, TrialState.COMPLETE, 0.5)
    add(study, TrialState.FAIL)
    assert finished(study) == 2  # a failed trial counts ...
    RetryHeartbeatStaleTrialCallback()(study, study.trials[1])
    assert finished(study) == 1  # ... unless it is being retried: its retry counts instead
    assert study.trials[2].state == TrialState.WAITING and study.trials[2].system_attrs["failed_trial"] == 1


def test_the_best_trial_is_the_best_whose_guards_held(tmp_path: Path) -> None:
    study = open_study(tune(), tmp_path, {"a": 1})
    add(study, TrialState.COMPLETE, 0.9, feasible=False)
    add(study, TrialState.COMPLETE, 0.7)
    add(study, TrialState.PRUNED)
    assert best_trial(study).number == 1
    other = open_study(tune(study="t"), tmp_path, {"a": 1})
    add(other, TrialState.COMPLETE, 0.6, feasible=False)
    add(other, TrialState.COMPLETE, 0.8, feasible=False)
    assert best_trial(other).number == 1  # none held its guards: the best objective, and best.yaml says so
    (best_yaml, _) = write_result(other, tune(study="t"), {}, tmp_path)
    assert "NO trial held every guard" in best_yaml.read_text()


def test_a_study_resumes_only_with_what_it_was_started_with(tmp_path: Path) -> None:
    open_study(tune(), tmp_path, {"space": SPACE, "dev_data": "abc"})
    open_study(tune(trials=10, timeout=60), tmp_path, {"space": SPACE, "dev_data": "abc"})  # more trials: fine
    with pytest.raises(ConfigError, match="was started with another space, objective, recipe or dev data"):
        open_study(tune(), tmp_path, {"space": SPACE, "dev_data": "changed"})
    assert (tmp_path / "s.db").is_file()


def test_best_yaml_holds_params_only_and_loads_as_params(tmp_path: Path) -> None:
    study = open_study(tune(), tmp_path, {"a": 1})
    add(study, TrialState.COMPLETE, 0.7)
    written = write_result(study, tune(), {"bm25": {"x": 0.5}}, tmp_path)
    assert [path.name for path in written] == ["best.yaml", "best.json"]
    assert (tmp_path / "s" / "best.yaml").read_text() == written[0].read_text()
    text = written[0].read_text()
    assert text.startswith("# rerank tune, study 's': trial 0 of 1 finished, dev objective 0.7000")
    assert yaml.safe_load(text) == {"train": {"learning_rate": 3e-5}}
    assert load_params(ROOT / "params.yaml", profile=str(written[0])).train.learning_rate == 3e-5


@pytest.mark.parametrize("kind", ["tpe", "random", "grid"])
def test_each_process_that_opens_the_study_samples_new_values(tmp_path: Path, kind: str) -> None:
    """A flow's trial workers and a resumed study each open the study anew; none may redraw an earlier trial's values.

    (optuna's samplers draw from one random stream per sampler object, which each process starts over from the seed.)
    """
    rates = [1e-5, 2e-5, 3e-5, 5e-5]
    rate = {"type": "categorical", "choices": rates} if kind == "grid" else SPACE["train.learning_rate"]
    space = {"train.learning_rate": rate, "train.max_length": {"type": "categorical", "choices": [128, 192, 256]}}
    drawn = []
    for _process in range(3):
        study = open_study(tune(space=space, sampler={"kind": kind, "seed": 7}), tmp_path, {"a": 1})
        trial = study.ask()
        if kind == "grid":
            values = (trial.suggest_categorical("train.learning_rate", rates),)
        else:
            values = (trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True),)
        values += (trial.suggest_categorical("train.max_length", [128, 192, 256]),)
        study.tell(trial, 0.5)
        drawn.append(values)
    assert len(set(drawn)) == 3, drawn


def test_a_study_run_again_from_the_start_draws_the_same_values(tmp_path: Path) -> None:
    """Seeded per trial number: the same study started over draws what it drew before (reproducible)."""
    runs = []
    for folder in ("first", "second"):
        values = []
        for _process in range(2):
            study = open_study(tune(sampler={"kind": "tpe", "seed": 7}), tmp_path / folder, {"a": 1})
            trial = study.ask()
            values.append(trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True))
            study.tell(trial, 0.5)
        runs.append(values)
    assert runs[0] == runs[1]


def test_the_params_as_they_are_are_queued_first_once_and_reported_beside_the_best(tmp_path: Path) -> None:
    params = {"train": {"learning_rate": 5e-5}}
    study = open_study(tune(), tmp_path, {"a": 1})
    first = enqueue_params(study, tune(), params)
    assert enqueue_params(open_study(tune(), tmp_path, {"a": 1}), tune(), params) == first == 0  # once per study
    trial = study.ask()
    assert trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True) == 5e-5
    study.tell(trial, 0.6)
    add(study, TrialState.COMPLETE, 0.7)
    written = write_result(study, tune(), {}, tmp_path)
    summary = json.loads(written[1].read_text())
    assert summary["params_trial"] == {"number": 0, "state": "complete", "objective": 0.6}
    assert "# The params as they were (trial 0): dev objective 0.6000." in written[0].read_text()
    won = open_study(tune(study="won"), tmp_path, {"a": 1})
    enqueue_params(won, tune(study="won"), params)
    trial = won.ask()
    trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True)
    trial.set_user_attr("feasible", True)
    won.tell(trial, 0.9)
    add(won, TrialState.COMPLETE, 0.7)
    (best_yaml, _) = write_result(won, tune(study="won"), {}, tmp_path)
    assert "The params as they were won: applying this file changes nothing." in best_yaml.read_text()


def test_no_params_trial_for_a_grid_a_switched_off_option_or_params_outside_the_space(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = {"train": {"learning_rate": 5e-5}}
    grid_space = {"train.learning_rate": {"type": "categorical", "choices": [1e-5, 5e-5]}}
    grid_tune = tune(space=grid_space, sampler={"kind": "grid"})
    assert enqueue_params(open_study(grid_tune, tmp_path / "grid", {"a": 1}), grid_tune, params) is None
    off = tune(enqueue_params=False)
    assert enqueue_params(open_study(off, tmp_path / "off", {"a": 1}), off, params) is None
    with caplog.at_level(logging.WARNING, logger="tasks.tune_study"):
        outside = open_study(tune(), tmp_path / "outside", {"a": 1})
        assert enqueue_params(outside, tune(), {"train": {"learning_rate": 3e-3}}) is None
    assert "train.learning_rate: 0.003 is not in the space" in caplog.text and outside.trials == []


@pytest.mark.parametrize(
    ("pruner", "pruned"),
    [
        ({"kind": "median"}, [0.60, 0.742]),  # below the median (0.743) of the complete trials at step 200
        ({"kind": "percentile", "keep_percent": 75.0}, [0.60]),  # outside their best 75% (below 0.735) only
        ({"kind": "percentile", "keep_percent": 25.0}, [0.60, 0.742]),  # outside their best 25% (below 0.751)
        ({"kind": "none"}, []),
    ],
)
def test_the_pruner_stops_trials_below_its_bar_at_the_same_step(pruner: dict, pruned: list[float]) -> None:
    config = tune(eval_steps=100, pruner={**pruner, "startup_trials": 4, "warmup_steps": 200})
    study = optuna.create_study(direction="maximize", pruner=make_pruner(config))
    for at_step_200 in (0.61, 0.735, 0.75, 0.77, 0.752, 0.736):  # complete trials: the bar is made of these
        trial = study.ask()
        trial.report(0.5, 100)
        trial.report(at_step_200, 200)
        study.tell(trial, at_step_200)
    stopped = []
    for value in (0.60, 0.742, 0.76):
        trial = study.ask()
        trial.report(0.1, 100)
        assert not trial.should_prune()  # within the warm-up: no trial is judged yet
        trial.report(value, 200)
        if trial.should_prune():
            stopped.append(value)
    assert stopped == pruned
