"""A study's MLflow runs when the study resumes against a tracking store that does not hold its earlier runs."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback

from tasks.config import TrackingConfig
from tasks.tune_config import TuneConfig
from tasks.tune_study import open_study
from tasks.tune_tracking import EARLIER_PARENT_TAG, child_run, parent_run

SPACE = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True}}


def start_trial(study: optuna.Study, parent: str) -> optuna.Trial:
    trial = study.ask()
    values = {"train.learning_rate": trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True)}
    trial.set_user_attr("mlflow_run_id", child_run(parent, trial, values, {"train": values}))
    return trial


def test_a_study_resumed_on_another_tracking_store_starts_a_new_parent_and_runs_its_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tune = TuneConfig(study="recipe", trials=3, space=SPACE)
    study = open_study(tune, tmp_path / "tune", {"a": 1})
    first_store = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'first.db'}")
    first_parent = parent_run(study, first_store, tune, tmp_path)
    assert parent_run(study, first_store, tune, tmp_path) == first_parent  # resumed here: the same parent
    killed = start_trial(study, first_parent)
    study.tell(killed, state=optuna.trial.TrialState.FAIL)  # its process died; the study queues a retry
    RetryHeartbeatStaleTrialCallback()(study, study.trials[killed.number])

    other_store = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'other.db'}")
    with caplog.at_level(logging.WARNING, logger="tasks.tune_tracking"):
        parent = parent_run(study, other_store, tune, tmp_path)
    retry = start_trial(study, parent)  # closing the dead trial's run, which this store does not have

    assert parent != first_parent and first_parent in caplog.text
    client = mlflow.MlflowClient()
    assert client.get_run(parent).data.tags[EARLIER_PARENT_TAG] == first_parent
    run = client.get_run(retry.user_attrs["mlflow_run_id"])
    assert run.data.tags["mlflow.parentRunId"] == parent and run.data.tags["tune.retry_of"] == str(killed.number)
    assert parent_run(study, other_store, tune, tmp_path) == parent  # and from now on the study keeps this one
