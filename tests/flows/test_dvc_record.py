"""The Prefect flow and `dvc repro` keep one record of what ran (flows/dvc_record.py), on the quick profile.

After a flow run `dvc status` is clean and `dvc repro` has nothing to do; a second run with nothing changed ends at
once as "nothing to retrain" (in Prefect and MLflow); a changed param re-runs exactly the stages that read it; and
`dvc push` stores the flow's prepared data and model in a remote.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from flows.dvc_record import describe_changes
from flows.retrain import NOTHING_TO_RETRAIN, OUTCOME_TAG, retrain
from tests.dvc_support import dvc, new_project

pytestmark = pytest.mark.slow


def stages_of(outputs: dict[str, str]) -> dict[str, str]:
    return dict(item.split(": ", 1) for item in outputs["stages"].split(", "))


def test_describe_changes_names_what_changed() -> None:
    status = [{"changed deps": {"params.yaml": {"train.epochs": "modified"}, "data/x": "modified"}}, "always changed"]
    assert describe_changes(status) == "changed deps: params.yaml (train.epochs), data/x; always changed"


def test_the_flow_records_what_ran_and_skips_what_did_not_change(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = new_project(tmp_path_factory.mktemp("dvc-record") / "project", {})
    first = retrain(root=str(root))
    assert set(stages_of(first).values()) == {"ran"}
    assert "Data and pipelines are up to date" in dvc(root, "status")
    assert "Running stage" not in dvc(root, "repro")

    # Nothing changed: the run ends at once, and says so in Prefect and on its MLflow run.
    state = retrain(root=str(root), return_state=True)
    assert state.name == "NothingToRetrain" and "Nothing to retrain" in state.message
    again = state.result()
    assert again["outcome"].startswith(NOTHING_TO_RETRAIN) and again["registered_model"] == first["registered_model"]
    mlflow.set_tracking_uri(first["mlflow_tracking_uri"])
    run = MlflowClient().get_run(again["mlflow_run_id"])
    assert run.data.tags[OUTCOME_TAG] == NOTHING_TO_RETRAIN and run.info.status == "FINISHED"

    # A changed evaluation param re-runs evaluation and what reads its output; prepare and train are skipped.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["evaluate"]["batch_size"] = 16
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = stages_of(retrain(root=str(root)))
    assert third["prepare"] == third["train"] == "skipped (unchanged)" and third["evaluate"] == "ran"
    assert "Data and pipelines are up to date" in dvc(root, "status")

    # The flow's outputs are in the DVC cache: a push stores the prepared data and the model in a remote.
    remote = tmp_path / "remote"
    dvc(root, "remote", "add", "--local", "flow-test", str(remote))
    dvc(root, "push", "-r", "flow-test")
    assert "in sync" in dvc(root, "status", "-c", "-r", "flow-test")
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    model_hash = next(out["md5"] for out in lock["card"]["outs"] if out["path"] == "artifacts/model")
    assert any(model_hash.removesuffix(".dir")[2:] in p.name for p in (remote / "files").rglob("*"))
    subprocess.run(["git", "status"], cwd=root, check=True, capture_output=True)
