"""The Prefect flow and `dvc repro` keep one record of what ran (flows/dvc_record.py), on the quick profile.

On the shared DVC project of tests/dvc_support.py, after its `dvc repro` ran every stage: `dvc repro` again has
nothing to do, and neither has the flow, which ends at once as "nothing to retrain" (in Prefect and MLflow); a changed
param re-runs exactly the stages that read it and records them, so `dvc status` stays clean; `dvc push` then stores
what the flow wrote in a remote.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from flows.dvc_record import describe_changes
from flows.retrain import NOTHING_TO_RETRAIN, OUTCOME_TAG, retrain
from tests.dvc_support import dvc, resumed_project

pytestmark = pytest.mark.slow


def stages_of(outputs: dict[str, str]) -> dict[str, str]:
    return dict(item.split(": ", 1) for item in outputs["stages"].split(", "))


def test_describe_changes_names_what_changed() -> None:
    status = [{"changed deps": {"params.yaml": {"train.epochs": "modified"}, "data/x": "modified"}}, "always changed"]
    assert describe_changes(status) == "changed deps: params.yaml (train.epochs), data/x; always changed"


def test_the_flow_and_dvc_repro_keep_one_record(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    project = resumed_project(tmp_path_factory)
    root = project.root
    for stage in ("evaluate", "card", "register"):  # the resumed repro ran what the killed one had not reached
        assert f"Running stage '{stage}'" in project.resumed_log
    assert "Running stage" not in dvc(root, "repro")

    # Nothing changed since `dvc repro`: the flow ends at once, and says so in Prefect and on its MLflow run.
    registered = json.loads((root / "artifacts" / "registry.json").read_text())
    state = retrain(root=str(root), return_state=True)
    assert state.name == "NothingToRetrain" and "Nothing to retrain" in state.message
    outputs = state.result()
    assert outputs["outcome"].startswith(NOTHING_TO_RETRAIN)
    assert outputs["registered_model"] == f"{registered['model_name']} version {registered['model_version']}"
    mlflow.set_tracking_uri(registered["tracking_uri"])
    run = MlflowClient().get_run(outputs["mlflow_run_id"])
    assert run.data.tags[OUTCOME_TAG] == NOTHING_TO_RETRAIN and run.info.status == "FINISHED"

    # A changed evaluation param re-runs evaluation and what reads its output; prepare and train are skipped.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["evaluate"]["batch_size"] = 16
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = stages_of(retrain(root=str(root)))
    assert stages["prepare"] == stages["train"] == "skipped (unchanged)" and stages["evaluate"] == "ran"
    assert "Data and pipelines are up to date" in dvc(root, "status")
    assert "Running stage" not in dvc(root, "repro")

    # What the flow wrote is in the DVC cache: a push stores the model in a remote.
    remote = tmp_path / "remote"
    dvc(root, "remote", "add", "--local", "flow-test", str(remote))
    try:
        dvc(root, "push", "-r", "flow-test")
        assert "in sync" in dvc(root, "status", "-c", "-r", "flow-test")
    finally:
        dvc(root, "remote", "remove", "--local", "flow-test")
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    model_hash = next(out["md5"] for out in lock["card"]["outs"] if out["path"] == "artifacts/model")
    assert any(model_hash.removesuffix(".dir")[2:] in p.name for p in (remote / "files").rglob("*"))
