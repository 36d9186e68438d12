"""Prepare fails before any work on missing or escaping sources, and dataset names cannot escape data/prepared."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rerank_lib.errors import ConfigError, DataValidationError
from tasks.config import load_params
from tasks.prepare import check_sources

ROOT = Path(__file__).resolve().parents[2]


def params_with(tmp_path: Path, datasets: dict, **train) -> Path:
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["prepare"] = {"datasets": datasets}
    data["train"]["datasets"] = {}  # these tests prepare data; nothing trains on what the evaluator reads
    data["evaluate"]["suite"] = {"pairs_train": {"kind": "classification", "dataset": "pairs", "split": "train"}}
    data["promote"] = {}
    data["dev"] = data["tune"] = None
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def entry(path: str) -> dict:
    return {
        "source": {"kind": "file", "path": path, "split": "train"},
        "columns": {"query": "q", "document": "d", "label": "l"},
        "format": "pairs",
    }


def test_missing_source_names_dataset_and_hints_dvc_pull(tmp_path: Path) -> None:
    cfg = load_params(params_with(tmp_path, {"pairs": entry("data/raw/none/pairs.tsv")}))
    with pytest.raises(DataValidationError, match=r"dataset 'pairs': source .*pairs.tsv is missing.*dvc pull"):
        check_sources(cfg.prepare, tmp_path)


def test_relative_paths_cannot_leave_the_project(tmp_path: Path) -> None:
    cfg = load_params(params_with(tmp_path, {"pairs": entry("../../etc/passwd")}))
    with pytest.raises(DataValidationError, match="outside the project"):
        check_sources(cfg.prepare, tmp_path)


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", ""])
def test_dataset_names_are_plain_folder_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="plain folder name"):
        load_params(params_with(tmp_path, {name: entry("data/raw/x.tsv")}))
