"""The tune flow: trials as Prefect tasks, each in its own worker process, two at a time, sharing one study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from flows.tune import TRIAL_TAG, run_tune_flow, trial_task
from rerank_app.cli import main
from tests.own_data_support import acme_profile, write_collection

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_trials_run_as_concurrent_tasks_of_one_study_and_the_flow_writes_best_yaml(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    (root / "profiles").mkdir(parents=True)
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    profile = acme_profile(write_collection(tmp_path / "acme-data"), tiny_bert_dir)
    profile["tune"] |= {"trials": 2, "concurrency": 2, "eval_steps": None}
    (root / "profiles" / "acme.yaml").write_text(yaml.safe_dump(profile))

    outputs = run_tune_flow(str(root), "params.yaml", "acme", None, concurrency=2)

    assert outputs["trials"] == "2 of 2" and outputs["best"][0].endswith("artifacts/tune/best.yaml")
    storage = f"sqlite:///{root / 'artifacts' / 'tune' / 'acme.db'}"
    trials = optuna.load_study(study_name="acme", storage=storage).get_trials()
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    first, second = sorted(trials, key=lambda trial: trial.datetime_start)
    assert second.datetime_start < first.datetime_complete  # the two worker processes ran at once
    assert first.params != second.params  # each worker process drew its own values, not the seed's first ones
    assert outputs["best_trial"] == max(trials, key=lambda trial: trial.value).number
    assert TRIAL_TAG in trial_task.tags  # a tag concurrency limit bounds trials across a work pool
    # The flow prepared the data it needed, and a second run of the finished study trains nothing more.
    assert (root / "data" / "prepared" / "acme-lists" / "manifest.json").is_file()
    assert main(["--root", str(root), "--profile", "acme", "tune", "--in-process"]) == 0
    assert len(optuna.load_study(study_name="acme", storage=storage).get_trials()) == 2
