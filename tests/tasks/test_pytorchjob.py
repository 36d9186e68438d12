"""launch.kind: pytorchjob — rendering the manifest, and the submit / wait loop against a fake kubectl.

No Kubernetes cluster (nor the Kubeflow training operator) can run here, so the loop is tested against a small
executable ``kubectl`` written into tmp_path and put first on PATH: it records each call's argv and stdin, answers
``create`` with a generated job name, and ``get`` with a job status that turns Succeeded (or Failed) after two
polls. What a real cluster does with the manifest is not tested.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rerank_lib.errors import ConfigError
from tasks.config import LaunchConfig, load_params
from tasks.pytorchjob import JobFailedError, TrainingProcessError, render_manifest, run_pytorchjob
from tasks.tracking import RUN_ID_ENV

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "infra/k8s/pytorchjob-train.yaml"
PARAMS = "artifacts/flow_params.yaml"
JOB = "rerank-train-abc12"

FAKE_KUBECTL = """#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).parent
args = sys.argv[1:]
stdin = sys.stdin.read() if "-" in args else None
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": args, "stdin": stdin}}) + "\\n")
mode = (here / "mode").read_text().strip()
if args[0] == "create":
    print("pytorchjob.kubeflow.org/{job}")
elif args[0] == "get":
    polls = here / "polls"
    count = int(polls.read_text()) + 1 if polls.exists() else 1
    polls.write_text(str(count))
    conditions = [{{"type": "Created", "status": "True", "reason": "PyTorchJobCreated", "message": "created"}}]
    if count >= 2:
        conditions.append({{"type": "Running", "status": "True", "reason": "PyTorchJobRunning", "message": "running"}})
    if count >= 3 and mode == "fail":
        conditions.append({{"type": "Failed", "status": "True", "reason": "PyTorchJobFailed",
                           "message": "PyTorchJob {job} is failed because 1 Master replica(s) failed."}})
    if count >= 3 and mode.startswith("succeed"):
        if mode == "succeed":  # the pods write the model on the workspace volume the flow shares
            trained = pathlib.Path({root!r}) / "artifacts" / "trained"
            trained.mkdir(parents=True, exist_ok=True)
            (trained / "config.json").write_text("{{}}")
        conditions[-1]["status"] = "False"
        conditions.append({{"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded", "message": "ok"}})
    print(json.dumps({{"kind": "PyTorchJob", "metadata": {{"name": args[2]}}, "status": {{"conditions": conditions}}}}))
elif args[0] == "delete":
    print("pytorchjob.kubeflow.org/{job} deleted")
else:
    sys.exit(f"unexpected kubectl {{args}}")
"""


def launch(**options: Any) -> LaunchConfig:
    return LaunchConfig(kind="pytorchjob", image="registry.example.org/rerank:cuda", **options)


def rendered(config: LaunchConfig, root: Path = ROOT) -> dict[str, Any]:
    job = render_manifest(config, root, "run-123", PARAMS)
    document = yaml.safe_load(job.manifest)
    assert document["metadata"]["namespace"] == job.namespace
    return document


def trainers(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    replicas = document["spec"]["pytorchReplicaSpecs"]
    return {kind: replica["template"]["spec"]["containers"][0] for kind, replica in replicas.items()}


def test_render_sets_image_processes_replicas_namespace_and_run_id() -> None:
    document = rendered(launch(num_processes=4, nodes=3, namespace="ml-train"))
    assert document["metadata"]["generateName"] == "rerank-train-"
    assert document["metadata"]["namespace"] == "ml-train"
    assert document["spec"]["nprocPerNode"] == "4"
    replicas = document["spec"]["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 2)
    for container in trainers(document).values():
        assert container["image"] == "registry.example.org/rerank:cuda"
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env[RUN_ID_ENV] == "run-123" and env["NCCL_DEBUG"] == "WARN"
        assert container["args"] == ["--no-python", "rerank", "--params", PARAMS, "stage", "train"]
        assert (
            container["resources"]["limits"]["nvidia.com/gpu"]
            == 4
            == container["resources"]["requests"]["nvidia.com/gpu"]
        )
    text = render_manifest(launch(), ROOT, "run-123", PARAMS).manifest
    assert "${" not in text and "&" not in text and "*trainer" not in text  # no placeholder, no shared YAML anchor


def test_render_single_node_has_no_worker_and_keeps_the_manifest_namespace() -> None:
    document = rendered(launch(nodes=1))
    assert set(document["spec"]["pytorchReplicaSpecs"]) == {"Master"}
    assert document["metadata"]["namespace"] == "rerank" and document["spec"]["nprocPerNode"] == "1"


def test_missing_image_or_bad_manifest_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="launch.image is required when launch.kind is 'pytorchjob'"):
        load_params(ROOT / "params.yaml", overrides={"launch": {"kind": "pytorchjob"}})
    unvalidated = LaunchConfig().model_copy(update={"kind": "pytorchjob"})
    with pytest.raises(ConfigError, match="launch.image is required"):
        render_manifest(unvalidated, ROOT, "run-123", PARAMS)
    with pytest.raises(ConfigError, match=r"launch.manifest .*nope.yaml does not exist"):
        render_manifest(launch(manifest="infra/k8s/nope.yaml"), ROOT, "run-123", PARAMS)
    with pytest.raises(ConfigError, match="must hold one PyTorchJob"):
        render_manifest(launch(manifest="infra/k8s/workspace-pvc.yaml"), ROOT, "run-123", PARAMS)
    (tmp_path / "bad.yaml").write_text("kind: PyTorchJob\nspec: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        render_manifest(launch(manifest="bad.yaml"), tmp_path, "run-123", PARAMS)


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root in tmp_path with the manifest, and a recording `kubectl` first on PATH; returns its folder."""
    (tmp_path / "infra" / "k8s").mkdir(parents=True)
    shutil.copy(ROOT / MANIFEST, tmp_path / MANIFEST)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(FAKE_KUBECTL.format(python=sys.executable, job=JOB, root=str(tmp_path)))
    script.chmod(0o755)
    (bin_dir / "mode").write_text("succeed")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def calls(bin_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bin_dir / "calls.jsonl").read_text().splitlines()]


def test_submit_then_poll_until_succeeded(fake_kubectl: Path, tmp_path: Path) -> None:
    ref = run_pytorchjob(launch(nodes=2, num_processes=2, poll_seconds=0.01), tmp_path, "run-9", tmp_path / PARAMS)
    assert (ref.name, ref.namespace) == (JOB, "rerank")
    create, *gets = calls(fake_kubectl)
    assert create["argv"] == ["create", "-f", "-", "-o", "name"]
    submitted = yaml.safe_load(create["stdin"])
    assert submitted["kind"] == "PyTorchJob" and submitted["spec"]["nprocPerNode"] == "2"
    assert submitted["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 1
    for container in trainers(submitted).values():
        assert {"name": RUN_ID_ENV, "value": "run-9"} in container["env"]
    assert [call["argv"] for call in gets] == [["get", "pytorchjob", JOB, "-n", "rerank", "-o", "json"]] * 3


def test_failed_condition_raises_with_its_message_and_keeps_the_job(fake_kubectl: Path, tmp_path: Path) -> None:
    (fake_kubectl / "mode").write_text("fail")
    with pytest.raises(JobFailedError, match="1 Master replica\\(s\\) failed"):
        run_pytorchjob(launch(poll_seconds=0.01), tmp_path, "run-9", tmp_path / PARAMS)
    assert [call["argv"][0] for call in calls(fake_kubectl)] == ["create", "get", "get", "get"]


def test_timeout_deletes_the_job_and_names_its_last_condition(fake_kubectl: Path, tmp_path: Path) -> None:
    (fake_kubectl / "mode").write_text("hang")
    with pytest.raises(TrainingProcessError, match="exceeded launch.timeout_seconds=1; its last condition: Running"):
        run_pytorchjob(launch(poll_seconds=0.2, timeout_seconds=1), tmp_path, "run-9", tmp_path / PARAMS)
    assert calls(fake_kubectl)[-1]["argv"][:5] == ["delete", "pytorchjob", JOB, "-n", "rerank"]


def test_success_without_the_model_on_the_shared_volume_fails(fake_kubectl: Path, tmp_path: Path) -> None:
    (fake_kubectl / "mode").write_text("succeed-elsewhere")
    with pytest.raises(TrainingProcessError, match="artifacts/trained does not exist here"):
        run_pytorchjob(launch(poll_seconds=0.01), tmp_path, "run-9", tmp_path / PARAMS)


def test_the_flow_launches_a_pytorchjob_instead_of_a_local_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import logging

    import flows.launch as launch_module
    from tasks.layout import Layout

    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(launch_module, "run_pytorchjob", lambda *args: seen.append(args))
    monkeypatch.setattr(
        launch_module, "run_streaming", lambda *args: pytest.fail("no local subprocess for a pytorchjob")
    )
    overrides = {"launch": {"kind": "pytorchjob", "image": "registry.example.org/rerank:cuda"}}
    cfg = load_params(ROOT / "params.yaml", overrides=overrides)
    launch_module.launch_training(cfg, Layout(tmp_path), "run-9", tmp_path / PARAMS, logging.getLogger("test"))
    assert seen and seen[0][:4] == (cfg.launch, tmp_path, "run-9", tmp_path / PARAMS)


def test_the_infra_readme_launch_example_is_a_valid_launch_section() -> None:
    import re

    readme = (ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)]
    (example,) = [block for block in blocks if isinstance(block, dict) and "launch" in block]
    launch_cfg = load_params(ROOT / "params.yaml", overrides=example).launch
    assert launch_cfg.kind == "pytorchjob" and (ROOT / launch_cfg.manifest).is_file()
    assert set(example["launch"]) == set(LaunchConfig.model_fields) - {"accelerate_config"}  # every option shown
