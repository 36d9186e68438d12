"""One `dvc repro` project shared by the DVC tests (resume after SIGKILL, push/pull to a second remote, metrics and
plots), built once per test session because a quick-profile repro takes minutes on a two-core machine.

The build is itself the resume scenario: `dvc repro train` is started in its own process group, the whole group is
SIGKILLed as soon as a complete checkpoint exists, and a second `dvc repro` finishes the pipeline. What the resume
test checks is recorded in :class:`ResumedProject` at that moment, so later tests may change the project.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.config import load_params, raw_params
from tests.e2e_support import PROJECT, copy_project, env_with_venv, write_dvc_yaml

MAX_STEPS = 30
SAVE_STEPS = 5
LOGGING_STEPS = 5
# The quick profile with enough steps for a kill in the middle, and a checkpoint every SAVE_STEPS steps.
RESUME_OVERRIDES = {
    "train": {"max_steps": MAX_STEPS, "save_steps": SAVE_STEPS, "logging_steps": LOGGING_STEPS, "save_total_limit": 2}
}
CHECKPOINT_SECONDS = 900
DVC_SECONDS = 1800


def dvc(root: Path, *args: str, timeout: float = DVC_SECONDS) -> str:
    """Run a dvc command in ``root`` with this interpreter first on PATH; its stdout and stderr (the stage logs)
    together, or fail the test with them."""
    result = subprocess.run(
        ["dvc", *args],
        cwd=root,
        env=env_with_venv(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout[-12000:]}"
    return result.stdout


def dvc_json(root: Path, *args: str) -> Any:
    """The parsed JSON that a dvc command prints on stdout (warnings on stderr kept apart)."""
    result = subprocess.run(
        ["dvc", *args], cwd=root, env=env_with_venv(), capture_output=True, text=True, timeout=DVC_SECONDS
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return json.loads(result.stdout)


def new_project(target: Path, overrides: dict) -> Path:
    """A copy of the project as git would commit it, with the raw data pulled and params = quick + ``overrides``."""
    root = copy_project(target)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    remote = (PROJECT.parent / "shared" / "dvc-remote").resolve()
    dvc(root, "remote", "modify", "--local", "team", "url", str(remote))
    dvc(root, "pull", *[str(p.relative_to(root)) for p in sorted((root / "data" / "raw").glob("*.dvc"))])
    params = raw_params(PROJECT / "params.yaml", "quick", overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(root / "params.yaml")  # the stages will read it as it is: fail here if it does not validate
    write_dvc_yaml(root)
    return root


def complete_checkpoints(folder: Path) -> list[int]:
    """Steps of the ``<config>/checkpoint-N`` folders whose trainer_state.json (written last) is readable."""
    steps = []
    for checkpoint in folder.glob("*/checkpoint-*"):  # one folder per training config
        try:
            state = json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        if (checkpoint / "model.safetensors").is_file() and state.get("global_step") == int(checkpoint.name[11:]):
            steps.append(state["global_step"])
    return sorted(steps)


def stage_output(log: str, stage: str) -> str:
    """The part of a `dvc repro` output that one stage's command printed."""
    start = log.index(f"Running stage '{stage}'")
    end = log.find("Running stage '", start + 1)
    return log[start : end if end != -1 else len(log)]


def progress_steps(log: str, total: int) -> list[int]:
    """The step counts that the trainer's progress bar printed (``12/30 [...``) in the train stage's output."""
    return [int(step) for step in re.findall(rf"(\d+)/{total} \[", stage_output(log, "train"))]


@dataclass(frozen=True)
class ResumedProject:
    root: Path
    killed_returncode: int
    killed_log: str
    checkpoints_at_kill: list[int]
    summary_after_kill_exists: bool
    resumed_log: str
    summary: dict


def _kill_at_first_checkpoint(root: Path, log_path: Path) -> subprocess.Popen:
    """Start `dvc repro train` in a new process group and SIGKILL the group once a complete checkpoint exists."""
    checkpoints = root / "artifacts" / "checkpoints"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["dvc", "repro", "train"],
            cwd=root,
            env=env_with_venv(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + CHECKPOINT_SECONDS
    try:
        while not complete_checkpoints(checkpoints):
            if process.poll() is not None:
                pytest.fail(f"`dvc repro train` exited ({process.returncode}) before a checkpoint:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint after {CHECKPOINT_SECONDS}s:\n{_tail(log_path)}")
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    return process


def _tail(path: Path, chars: int = 6000) -> str:
    return path.read_text(errors="replace")[-chars:]


_BUILT: dict[str, ResumedProject] = {}
_FAILED: list[str] = []


def resumed_project(factory: pytest.TempPathFactory) -> ResumedProject:
    """The shared project (built on first use): quick profile, training SIGKILLed at a checkpoint, then resumed.

    A failed build is not retried by the next test module; they fail with the first error instead.
    """
    if _FAILED:
        pytest.fail(f"the shared DVC project failed to build:\n{_FAILED[0]}")
    if "project" not in _BUILT:
        try:
            _BUILT["project"] = _build(factory)
        except BaseException as error:
            _FAILED.append(str(error)[-12000:])
            raise
    return _BUILT["project"]


def _build(factory: pytest.TempPathFactory) -> ResumedProject:
    base = factory.mktemp("dvc-resume")
    root = new_project(base / "project", RESUME_OVERRIDES)
    killed_log = base / "repro-killed.log"
    killed = _kill_at_first_checkpoint(root, killed_log)
    at_kill = complete_checkpoints(root / "artifacts" / "checkpoints")
    summary_file = root / "artifacts" / "trained" / "training_summary.json"
    summary_after_kill_exists = summary_file.exists()
    resumed_log = dvc(root, "repro")
    return ResumedProject(
        root=root,
        killed_returncode=killed.returncode,
        killed_log=killed_log.read_text(errors="replace"),
        checkpoints_at_kill=at_kill,
        summary_after_kill_exists=summary_after_kill_exists,
        resumed_log=resumed_log,
        summary=json.loads(summary_file.read_text()),
    )
