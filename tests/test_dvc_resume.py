"""`dvc repro` killed with SIGKILL in the middle of training resumes from the last checkpoint, not from step 0.

The shared project (tests/dvc_support.py) starts `dvc repro train` in its own process group, SIGKILLs the whole
group once a complete ``checkpoint-N`` exists, then runs `dvc repro` again; these tests read what happened.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.dvc_support import LOGGING_STEPS, MAX_STEPS, SAVE_STEPS, ResumedProject, progress_steps, resumed_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ResumedProject:
    return resumed_project(tmp_path_factory)


def test_the_first_repro_was_killed_in_the_middle_of_training(project: ResumedProject) -> None:
    assert project.killed_returncode == -signal.SIGKILL
    assert not project.summary_after_kill_exists  # training never finished
    assert project.checkpoints_at_kill, "no complete checkpoint when the process group was killed"
    assert SAVE_STEPS <= max(project.checkpoints_at_kill) < MAX_STEPS


def test_the_next_repro_resumes_from_the_last_checkpoint(project: ResumedProject) -> None:
    last = max(project.checkpoints_at_kill)
    resumed_from = project.summary["resumed_from"]
    assert resumed_from is not None and Path(resumed_from).name == f"checkpoint-{last}"
    assert f"Resuming training from {resumed_from}" in project.resumed_log
    assert project.summary["global_step"] == MAX_STEPS

    # Steps up to the checkpoint were not trained again: the progress bar of the resumed run starts past it.
    resumed_steps = [step for step in progress_steps(project.resumed_log, MAX_STEPS) if step > 0]
    assert resumed_steps and min(resumed_steps) > last

    # At most SAVE_STEPS steps were lost: the killed run had got no further than the checkpoint plus SAVE_STEPS.
    killed_steps = progress_steps(project.killed_log, MAX_STEPS)
    assert killed_steps, "the killed run printed no training progress"
    assert last <= max(killed_steps) <= last + SAVE_STEPS


def test_the_resumed_run_keeps_the_training_history_and_the_mlflow_run(project: ResumedProject) -> None:
    logged = [row["step"] for row in project.summary["log_history"] if "loss" in row]
    assert logged == list(range(LOGGING_STEPS, MAX_STEPS + 1, LOGGING_STEPS))

    # One MLflow run across the kill: the losses of both processes are in it, every step once.
    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")
    history = client.get_metric_history(project.summary["mlflow_run_id"], "loss")
    assert sorted({m.step for m in history}) == list(range(LOGGING_STEPS, MAX_STEPS + 1, LOGGING_STEPS))
    assert min(m.step for m in history) <= max(project.checkpoints_at_kill)  # logged by the killed process
