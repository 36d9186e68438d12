"""`rerank tune` end to end on a synthetic collection and the tiny BERT: a study of 6 trials that is SIGKILLed in the
middle of a trial's training, resumes (the killed trial is retried from its checkpoint), prunes, records every trial as
an MLflow child run of one parent, and writes best.yaml, which `--set-from` applies to a training run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from rerank_app.cli import main
from tasks.tune_trial import UNJUDGED
from tests.own_data_support import acme_profile, write_collection

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def tune_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "rerank_app.cli", "--root", str(root), "--profile", "acme", "tune", "--in-process"]


def kill_during_training(root: Path, log: Path) -> None:
    """Start the study and SIGKILL it as soon as a trial has written a checkpoint (trials delete theirs when done)."""
    checkpoints = root / "artifacts" / "tune" / "acme" / "checkpoints"
    with log.open("wb") as out:
        process = subprocess.Popen(tune_command(root), cwd=root, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not list(checkpoints.glob("*/*/checkpoint-*/trainer_state.json")):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial wrote a checkpoint"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def project(tiny_bert_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "profiles").mkdir(parents=True)
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    profile = acme_profile(write_collection(tmp_path / "acme-data"), tiny_bert_dir)
    profile["train"] |= {"epochs": 1, "save_steps": 4}  # checkpoints to resume from, and a moment to be killed in
    profile["tune"]["eval_steps"] = 4
    (root / "profiles" / "acme.yaml").write_text(yaml.safe_dump(profile))
    assert main(["--root", str(root), "--profile", "acme", "stage", "prepare"]) == 0
    return root


def test_a_killed_study_resumes_prunes_tracks_every_trial_and_its_best_applies(project: Path, tmp_path: Path) -> None:
    kill_during_training(project, tmp_path / "first.log")
    storage = f"sqlite:///{project / 'artifacts' / 'tune' / 'acme.db'}"
    (killed,) = optuna.load_study(study_name="acme", storage=storage).get_trials(
        states=(optuna.trial.TrialState.RUNNING,)
    )

    done = subprocess.run(tune_command(project), cwd=project, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "apply with     rerank --set-from artifacts/tune/best.yaml run" in done.stdout

    trials = optuna.load_study(study_name="acme", storage=storage).get_trials()
    states = {trial.number: trial.state for trial in trials}
    assert states[killed.number] == optuna.trial.TrialState.FAIL  # stale after its process died ...
    (retry,) = [trial for trial in trials if trial.system_attrs.get("failed_trial") == killed.number]
    assert retry.params == killed.params and "checkpoint-" in retry.user_attrs["resumed_from"]  # ... and resumed
    counted = [trial for trial in trials if trial.number != killed.number]
    assert len(counted) == 6 and all(t.state != optuna.trial.TrialState.RUNNING for t in counted)
    assert optuna.trial.TrialState.PRUNED in states.values() and optuna.trial.TrialState.COMPLETE in states.values()

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["reranker-retraining"], output_format="list")
    (parent,) = [run for run in runs if run.info.run_name == "tune-acme"]
    children = {run.info.run_name: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {f"trial-{trial.number}" for trial in trials} and parent.info.status == "FINISHED"
    died = children[f"trial-{killed.number}"]
    assert died.info.status == "KILLED" and died.data.tags["tune.retried_as"] == str(retry.number)
    for trial in trials:
        run = children[f"trial-{trial.number}"]
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert run.data.tags["tune.state"] == "pruned" and "eval_dev_objective" in run.data.metrics
            assert run.data.tags["tune.pruned_because"].startswith("dev objective below the pruner's bar at step")
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert run.data.metrics["objective"] == pytest.approx(trial.value)
            assert run.data.params["trial.train.learning_rate"] == str(trial.params["train.learning_rate"])
    client = mlflow.MlflowClient()
    curve = client.get_metric_history(children[f"trial-{retry.number}"].info.run_id, "eval_dev_objective")
    resumed_step = int(retry.user_attrs["resumed_from"].rsplit("-", 1)[1])
    assert curve and min(point.step for point in curve) > resumed_step  # the retry went on from the checkpoint

    best = yaml.safe_load((project / "artifacts" / "tune" / "best.yaml").read_text())
    summary = json.loads((project / "artifacts" / "tune" / "best.json").read_text())
    winner = next(trial for trial in trials if trial.number == summary["best"]["number"])
    assert winner.value == max(t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert best["train"]["learning_rate"] == winner.params["train.learning_rate"]
    assert parent.data.metrics["best_objective"] == pytest.approx(winner.value)

    # best.yaml applies: the next training run trains with the best trial's values.
    best_file = str(project / "artifacts" / "tune" / "best.yaml")
    assert main(["--root", str(project), "--profile", "acme", "--set-from", best_file, "stage", "train"]) == 0
    trained = json.loads((project / "artifacts" / "trained" / "training_summary.json").read_text())
    assert trained["hyperparameters"]["learning_rate"] == winner.params["train.learning_rate"]


def test_trials_training_past_the_time_budget_end_as_pruned_and_the_study_says_no_best(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = project / "artifacts" / "tune" / "best.yaml"  # an earlier study's result, not this one's
    earlier.parent.mkdir(parents=True)
    earlier.write_text("train:\n  learning_rate: 0.001\n")
    budget = ["--set", "tune.trials=2", "--set", "tune.trial_max_train_seconds=0.001", "--set", "tune.study=hurry"]
    budget += ["--set", "dev.objective.guards=[{metric: acme_lists_dev_ndcg@10, above: bm25}]"]
    assert main(["--root", str(project), "--profile", "acme", *budget, "tune", "--in-process"]) == 0
    storage = f"sqlite:///{project / 'artifacts' / 'tune' / 'hurry.db'}"
    trials = optuna.load_study(study_name="hurry", storage=storage).get_trials()
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert all(t.user_attrs["over_time_budget_at_step"] == 1 for t in trials)  # stopped after their first step
    assert all(t.constraints == {"guard_0": UNJUDGED} for t in trials)  # never judged: ranked after judged trials
    summary = json.loads((project / "artifacts" / "tune" / "best.json").read_text())
    assert summary["study"] == "hurry" and summary["best"] is None
    assert not earlier.exists()  # nothing at the top passes for this study's best
    out = capsys.readouterr().out
    assert "nothing to apply" in out and "--set-from" not in out
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["reranker-retraining"], output_format="list")
    because = {run.data.tags.get("tune.pruned_because") for run in runs if run.info.run_name.startswith("trial-")}
    assert because == {"training passed tune.trial_max_train_seconds (0.001 s) at step 1"}
