"""`dvc push` / `dvc pull` of the pipeline outputs through a second (temporary, local) remote.

Runs on the shared project of tests/dvc_support.py; it deletes the outputs and the cache and pulls them back, so
the project is as it was afterwards (checked with `dvc status`).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.dvc_support import dvc, resumed_project

pytestmark = pytest.mark.slow

# The cached outputs of dvc.yaml (checkpoints, metrics and records are `cache: false` and stay in the workspace).
OUTPUTS = ("data/prepared", "artifacts/trained", "artifacts/model")


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_outputs_round_trip_through_a_second_remote(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    root = resumed_project(tmp_path_factory).root
    before = {out: tree_digest(root / out) for out in OUTPUTS}
    model_files = before[
        "artifacts/model"
    ]  # the cross-encoder alone, or a package around it (the package stage's choice)
    assert {"model.safetensors", "cross_encoder/model.safetensors"} & set(model_files) and "README.md" in model_files

    remote = tmp_path / "second-remote"
    dvc(root, "remote", "add", "--local", "second", str(remote))
    team_url = dvc(root, "config", "--local", "remote.team.url").strip()
    try:
        dvc(root, "push", "-r", "second")
        assert any(p.is_file() for p in (remote / "files").rglob("*")), "nothing was pushed"

        for out in OUTPUTS:
            shutil.rmtree(root / out)
        shutil.rmtree(root / ".dvc" / "cache")
        # The team remote points nowhere while pulling: everything must come from the second remote.
        dvc(root, "remote", "modify", "--local", "team", "url", str(tmp_path / "no-such-remote"))
        dvc(root, "pull", "-r", "second")
    finally:
        dvc(root, "remote", "modify", "--local", "team", "url", team_url)
        dvc(root, "remote", "remove", "--local", "second")

    after = {out: tree_digest(root / out) for out in OUTPUTS}
    assert after == before  # byte-identical, file for file
    assert "Data and pipelines are up to date" in dvc(root, "status")
