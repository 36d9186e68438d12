"""A trial's checkpoint folder: its own, and its retries' (a retry resumes it; a twin trial never touches it)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback

from tasks.tune_trial import checkpoint_root


def draw(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("train.learning_rate", 1e-5, 1e-4)
    return trial


def test_a_retry_uses_its_first_trys_checkpoints_and_a_twin_trial_its_own(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    first = draw(study)
    first_root = checkpoint_root(first, tmp_path)
    study.tell(first, state=optuna.trial.TrialState.FAIL)  # its process died
    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    retry = draw(study)  # the enqueued retry: the same values
    study.enqueue_trial(first.params)
    twin = draw(study)  # another trial drawing the same values, e.g. for a second worker

    assert retry.params == twin.params == first.params
    assert checkpoint_root(retry, tmp_path) == first_root == tmp_path / "checkpoints" / "trial-0"
    assert checkpoint_root(twin, tmp_path) == tmp_path / "checkpoints" / f"trial-{twin.number}" != first_root
    # A retry of the retry still resumes the first try's checkpoints.
    study.tell(retry, state=optuna.trial.TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback()(study, study.trials[retry.number])
    again = draw(study)
    assert again.params == first.params and checkpoint_root(again, tmp_path) == first_root
