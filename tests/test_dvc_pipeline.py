"""`dvc repro` runs the same stages; a second `dvc repro` with nothing changed does nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e_support import PROJECT, copy_project, env_with_venv, quick_params

pytestmark = pytest.mark.slow


def dvc(root: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=root, env=env_with_venv(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_dvc_repro_runs_every_stage_then_is_up_to_date(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    remote = (PROJECT.parent / "shared" / "dvc-remote").resolve()
    dvc(root, "remote", "modify", "--local", "team", "url", str(remote))
    dvc(root, "pull", *[str(p.relative_to(root)) for p in sorted((root / "data" / "raw").glob("*.dvc"))])
    quick_params(root)

    first = dvc(root, "repro")
    for stage in ("prepare", "train", "evaluate", "card", "register"):
        assert f"Running stage '{stage}'" in first
    metrics = json.loads((root / "artifacts" / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["wikiqa_test_ndcg@10"] <= 1.0
    # Both baselines sit beside our numbers under the same keys: BM25 over the candidates, and the bi-encoder
    # (the first stage, so its numbers equal the reranking evaluator's base_* metrics).
    baselines = metrics["baselines"]
    for metric in ("map", "mrr@10", "ndcg@10"):
        assert 0.0 < baselines["bm25"][f"wikiqa_test_{metric}"] <= 1.0
        assert baselines["bi_encoder"][f"wikiqa_test_{metric}"] == metrics["metrics"][f"wikiqa_test_base_{metric}"]
    assert baselines["bm25"]["wikiqa_test_ndcg@10"] != baselines["bi_encoder"]["wikiqa_test_ndcg@10"]
    assert (root / "artifacts" / "model" / "README.md").is_file()
    assert json.loads((root / "artifacts" / "registry.json").read_text())["model_version"] == "1"

    second = dvc(root, "repro")
    assert "Running stage" not in second
    assert "up to date" in dvc(root, "status")
