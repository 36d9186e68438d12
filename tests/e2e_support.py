"""Helpers for end-to-end tests: a throwaway project root with the real raw data and the quick profile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tasks.config import merged_params_dict

PROJECT = Path(__file__).resolve().parents[1]


def quick_params(root: Path) -> None:
    """Write the effective quick-profile params as the root's params.yaml (and dvc.yaml, which follows params)."""
    params = merged_params_dict(PROJECT / "params.yaml", profile="quick")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_dvc_yaml(root)


def write_dvc_yaml(root: Path) -> None:
    """`rerank dvc-yaml` in ``root``: dvc.yaml for the params there."""
    from rerank_app.cli import main

    assert main(["--root", str(root), "dvc-yaml"]) == 0


QUICK_RAW_DATA = ("wikiqa", "scifact", "stsbenchmark")  # the raw sets the quick profile prepares


def link_raw_data(root: Path) -> None:
    """Point the root's data/raw/<set> folders the quick profile reads at the project's pulled copy (read-only)."""
    raw = root / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in QUICK_RAW_DATA:
        (raw / name).symlink_to(PROJECT / "data" / "raw" / name, target_is_directory=True)


def copy_project(target: Path) -> Path:
    """Copy what git would commit (tracked and untracked-but-not-ignored files) into ``target``."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = PROJECT / name.decode()
        if source.is_file():
            destination = target / name.decode()
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def env_with_venv() -> dict[str, str]:
    """The environment with this interpreter's bin first on PATH, as DVC stage commands call `python`."""
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
