"""The tune stage under DVC: written on request beside dvc.yaml, outside `dvc repro`'s stages, run by its own file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from rerank_app.cli import main
from tests.e2e_support import env_with_venv
from tests.own_data_support import acme_profile, write_collection

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def dvc(root: Path, *args: str) -> str:
    done = subprocess.run(["dvc", *args], cwd=root, env=env_with_venv(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout + done.stderr


def test_the_tune_stage_runs_only_when_asked_and_then_is_up_to_date(tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "profiles").mkdir(parents=True)
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    profile = acme_profile(write_collection(tmp_path / "acme-data"), tiny_bert_dir)
    profile["tune"] |= {"trials": 1, "eval_steps": None}
    (root / "profiles" / "acme.yaml").write_text(yaml.safe_dump(profile))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    assert main(["--root", str(root), "--profile", "profiles/acme.yaml", "dvc-yaml"]) == 0
    assert not (root / "tune" / "dvc.yaml").exists()  # only on request
    assert main(["--root", str(root), "--profile", "profiles/acme.yaml", "dvc-yaml", "--tune"]) == 0
    assert main(["--root", str(root), "--profile", "profiles/acme.yaml", "dvc-yaml", "--check"]) == 0

    assert "tune" not in dvc(root, "stage", "list")  # `dvc repro` reproduces dvc.yaml's stages: not the study
    assert main(["--root", str(root), "--profile", "profiles/acme.yaml", "stage", "prepare"]) == 0
    first = dvc(root, "repro", "--single-item", "tune/dvc.yaml")
    assert "Running stage 'tune/dvc.yaml:tune'" in first
    assert (root / "artifacts" / "tune" / "acme" / "best.yaml").is_file()
    lock = yaml.safe_load((root / "tune" / "dvc.lock").read_text())
    assert "artifacts/tune/acme.db" in {out["path"] for out in lock["stages"]["tune"]["outs"]}
    assert "Running stage" not in dvc(root, "repro", "--single-item", "tune/dvc.yaml")  # nothing changed
