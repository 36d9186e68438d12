"""A study saved to optuna's journal and restored on another machine resumes as the study it was."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from study_journal import restore, save, spent_seconds

from rerank_lib.errors import ConfigError
from tasks.tune_config import TuneConfig
from tasks.tune_study import finished, open_study

SPACE = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True}}


def tune() -> TuneConfig:
    return TuneConfig(study="recipe", trials=4, space=SPACE)


def draw(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True)
    return trial


def a_study_stopped_mid_trial(folder: Path) -> optuna.Study:
    """Two trials done (one complete, one pruned) and a third left running by a process that was killed."""
    study = open_study(tune(), folder, {"space": "v1"})
    complete = draw(study)
    complete.report(0.4, step=100)
    complete.set_user_attr("metrics", {"dev_ndcg@10": 0.71})
    study.tell(complete, 0.71)
    pruned = draw(study)
    pruned.report(0.1, step=100)
    study.tell(pruned, state=TrialState.PRUNED)
    draw(study)  # running when its process died
    return study


def test_a_saved_study_resumes_elsewhere_with_its_trials_and_the_killed_one_queued_again(tmp_path: Path) -> None:
    study = a_study_stopped_mid_trial(tmp_path / "first-machine")
    running = study.trials[2]
    journal = tmp_path / "results" / "study.jsonl"
    journal.parent.mkdir()

    assert save(f"sqlite:///{tmp_path / 'first-machine' / 'recipe.db'}", "recipe", journal) == 4
    assert not journal.with_name("study.jsonl.partial").exists()

    second = tmp_path / "second-machine"
    second.mkdir()
    assert restore(journal, f"sqlite:///{second / 'recipe.db'}", "recipe")
    resumed = open_study(tune(), second, {"space": "v1"})  # the same fingerprint: accepted
    trials = resumed.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING]
    assert trials[0].value == 0.71 and trials[0].user_attrs["metrics"] == {"dev_ndcg@10": 0.71}
    assert trials[0].intermediate_values == {100: 0.4} and trials[1].intermediate_values == {100: 0.1}
    assert trials[3].params == running.params and trials[3].system_attrs["failed_trial"] == 2
    assert finished(resumed) == 2  # the killed trial is being retried: its retry will count instead
    assert spent_seconds(resumed) == spent_seconds(optuna.load_study(study_name="recipe", storage=study._storage))
    assert spent_seconds(resumed) > 0

    retry = resumed.ask()  # the next trial run is the killed one's retry, with its values
    assert retry.number == 3 and retry.params == running.params


def test_a_study_with_another_fingerprint_is_refused_after_restore(tmp_path: Path) -> None:
    a_study_stopped_mid_trial(tmp_path / "first-machine")
    journal = tmp_path / "study.jsonl"
    save(f"sqlite:///{tmp_path / 'first-machine' / 'recipe.db'}", "recipe", journal)
    restore(journal, f"sqlite:///{tmp_path / 'recipe.db'}", "recipe")
    with pytest.raises(ConfigError, match="was started with another space"):
        open_study(tune(), tmp_path, {"space": "v2"})


def test_restore_leaves_a_study_the_storage_already_holds(tmp_path: Path) -> None:
    a_study_stopped_mid_trial(tmp_path / "first-machine")
    journal = tmp_path / "study.jsonl"
    save(f"sqlite:///{tmp_path / 'first-machine' / 'recipe.db'}", "recipe", journal)
    local = open_study(tune(), tmp_path / "here", {"space": "v1"})
    trial = draw(local)
    local.tell(trial, 0.5)

    here = f"sqlite:///{tmp_path / 'here' / 'recipe.db'}"
    assert not restore(journal, here, "recipe")
    assert len(optuna.load_study(study_name="recipe", storage=here).trials) == 1
    assert not restore(tmp_path / "missing.jsonl", f"sqlite:///{tmp_path / 'other.db'}", "recipe")


def test_saving_an_unchanged_study_leaves_its_journal_untouched(tmp_path: Path) -> None:
    study = a_study_stopped_mid_trial(tmp_path / "first-machine")
    url = f"sqlite:///{tmp_path / 'first-machine' / 'recipe.db'}"
    journal = tmp_path / "study.jsonl"
    save(url, "recipe", journal)
    first = journal.read_bytes()

    assert save(url, "recipe", journal) == 4  # a new optuna writer id, the same trials
    assert journal.read_bytes() == first
    assert not journal.with_name("study.jsonl.partial").exists()

    retry = draw(study)  # the killed trial's queued retry runs and completes
    study.tell(retry, 0.8)
    assert save(url, "recipe", journal) == 4
    assert journal.read_bytes() != first
    assert '"value":0.8' in journal.read_text()


def test_a_damaged_journal_is_replaced_by_the_study_as_it_is(tmp_path: Path) -> None:
    a_study_stopped_mid_trial(tmp_path / "first-machine")
    journal = tmp_path / "study.jsonl"
    journal.write_text('{"op_code": 0, "study_na')

    assert save(f"sqlite:///{tmp_path / 'first-machine' / 'recipe.db'}", "recipe", journal) == 4
    assert restore(journal, f"sqlite:///{tmp_path / 'elsewhere.db'}", "recipe")
