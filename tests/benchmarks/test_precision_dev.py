"""benchmarks/precision_dev.py: the verdict per dev metric, and imported runs checked against the benchmark's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from precision_dev import compare, expected_run_config, imported, markdown, project


def record(precision: str, seed: int, ndcg: float, seconds: float = 100.0) -> dict:
    metrics = {"objective": ndcg, "wikiqa_heldout_ndcg@10": ndcg, "wikiqa_heldout_map": ndcg / 2}
    return {
        "precision": precision,
        "seed": seed,
        "precision_used": precision,
        "training_seconds": seconds,
        "global_step": 10,
        "source": "trained here",
        "cross_encoder": metrics,
        "package": {"share": 0.5, **metrics},
        "baselines": {},
    }


def test_bf16_within_one_fp32_std_passes_and_outside_fails() -> None:
    fp32 = [record("fp32", s, v, 200.0) for s, v in ((1, 0.80), (2, 0.82), (3, 0.84))]  # std 0.02
    close = compare([*fp32, *(record("bf16", s, v, 100.0) for s, v in ((1, 0.81), (2, 0.83), (3, 0.83)))])
    far = compare([*fp32, *(record("bf16", s, v, 100.0) for s, v in ((1, 0.77), (2, 0.78), (3, 0.79)))])
    row = close["table"]["cross_encoder/wikiqa_heldout_ndcg@10"]
    assert row["fp32"]["std"] == pytest.approx(0.02)
    assert row["bf16_minus_fp32"] == pytest.approx(0.0033, abs=1e-4)
    assert row["within_one_std"] is True
    assert far["table"]["cross_encoder/wikiqa_heldout_ndcg@10"]["within_one_std"] is False
    assert "cross_encoder/wikiqa_heldout_map" not in close["table"]  # the verdict is on NDCG@10 and the objective
    assert close["training_seconds"] == {"fp32": 200.0, "bf16": 100.0}


def test_one_precision_alone_has_no_verdict_and_still_renders() -> None:
    result = compare([record("fp32", 1, 0.8), record("fp32", 2, 0.9)])
    row = result["table"]["cross_encoder/objective"]
    assert "within_one_std" not in row and "bf16" not in row
    report = {
        "date": "d",
        "command": "c",
        "machine": {"cpu": "cpu", "logical_cpus": 2},
        "runs": [],
        "comparison": result,
    }
    assert "| cross_encoder/objective | 0.8500 ± 0.0707 (n=2) | - | - | - |" in markdown(report)


def prepared_project(work: Path) -> Path:
    root = project(work)
    for name in ("wikiqa-train-lists", "scifact-train-lists"):
        (root / "data" / "prepared" / name).mkdir(parents=True)
        (root / "data" / "prepared" / name / "train.parquet").write_bytes(name.encode())
    return root


def trained_project(folder: Path, run_config: dict) -> Path:
    (folder / "artifacts" / "trained").mkdir(parents=True)
    (folder / "artifacts" / "dev").mkdir(parents=True)
    summary = {"run_config": run_config, "precision_used": "fp32", "training_seconds": 5.0, "global_step": 3}
    (folder / "artifacts" / "trained" / "training_summary.json").write_text(json.dumps(summary))
    alone = {"objective": 0.7, "metrics": {"wikiqa_heldout_ndcg@10": 0.7}}
    package = {"share": 0.3, "baselines": {}, "shares": {"0.0": alone, "0.3": {"objective": 0.8, "metrics": {}}}}
    (folder / "artifacts" / "dev" / "package.json").write_text(json.dumps(package))
    return folder


def test_an_imported_run_is_taken_only_with_the_same_config_and_data(tmp_path: Path) -> None:
    root = prepared_project(tmp_path / "work")
    expected = expected_run_config(root, None, "fp32", 42)
    assert expected["train"]["seed"] == 42 and expected["train"]["precision"] == "fp32"
    same = trained_project(tmp_path / "same", expected)
    precision, seed, taken = imported(f"fp32:42={same}", root, None)
    assert (precision, seed) == ("fp32", 42)
    assert taken["cross_encoder"]["objective"] == 0.7 and taken["package"] == {"share": 0.3, "objective": 0.8}
    assert taken["source"] == f"imported from {same}"

    other_seed = trained_project(tmp_path / "other-seed", expected_run_config(root, None, "fp32", 43))
    with pytest.raises(SystemExit, match="another config or data"):
        imported(f"fp32:42={other_seed}", root, None)
    (root / "data" / "prepared" / "scifact-train-lists" / "train.parquet").write_bytes(b"changed")
    with pytest.raises(SystemExit, match="another config or data"):
        imported(f"fp32:42={same}", root, None)
    with pytest.raises(SystemExit, match="PRECISION:SEED=PROJECT"):
        imported(f"fp16:42={same}", root, None)
