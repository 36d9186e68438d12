"""benchmarks/quality.py goes on from the seeds its results file already holds for the same recipe."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from quality import earlier_runs, main, parse_args, recipe_fingerprint, recipe_text, training_time_line


def test_seeds_measured_with_this_recipe_are_reused_and_others_are_not(tmp_path: Path) -> None:
    output = tmp_path / "results" / "tune-study-tuned"
    output.parent.mkdir()
    runs = [{"seed": 42, "fingerprint": "recipe-a"}, {"seed": 43, "fingerprint": "recipe-b"}]
    output.with_suffix(".json").write_text(json.dumps({"runs": runs}))

    assert earlier_runs(output, "recipe-a") == {42: runs[0]}
    assert earlier_runs(output, "recipe-c") == {}
    assert earlier_runs(tmp_path / "nothing-yet", "recipe-a") == {}


def test_a_seed_resumed_from_a_checkpoint_is_named_beside_its_training_minutes() -> None:
    runs = [
        {"seed": 42, "training_seconds": 1806.0, "resumed_from": None},
        {"seed": 43, "training_seconds": 702.0, "resumed_from": "/tmp/work/artifacts/checkpoints/checkpoint-300"},
        {"seed": 44, "training_seconds": None},
    ]
    line = training_time_line(runs)

    assert line is not None
    assert line.startswith("Training time per seed: 30.1, 11.7 (seed 43, after resuming from checkpoint-300) minutes")
    assert "/tmp/work" not in line
    assert training_time_line([{"seed": 42}]) is None


def test_a_rerun_with_every_seed_measured_rewrites_the_report_without_training(tmp_path: Path) -> None:
    output = tmp_path / "results" / "quality"
    output.parent.mkdir()
    args = parse_args(["--seeds", "42", "--output", str(output)])
    fingerprint = recipe_fingerprint(yaml.safe_load(recipe_text(args)), [])
    run = {
        "seed": 42,
        "fingerprint": fingerprint,
        "training_seconds": 600.0,
        "resumed_from": "/w/checkpoint-300",
        "bm25": {"wikiqa_test_ndcg@10": 0.69},
        "bi_encoder": {"wikiqa_test_ndcg@10": 0.78},
        "ours": {"wikiqa_test_ndcg@10": 0.81},
        "shipped": {"kind": "cross_encoder"},
    }
    output.with_suffix(".json").write_text(json.dumps({"date": "2026-01-02", "runs": [run]}))

    assert main(["--seeds", "42", "--output", str(output), "--work-dir", str(tmp_path / "work")]) == 0

    report = json.loads(output.with_suffix(".json").read_text())
    assert report["date"] == "2026-01-02" and report["runs"] == [run]
    assert report["table"]["wikiqa_test"]["ndcg@10"]["ours"]["mean"] == 0.81
    text = output.with_suffix(".md").read_text()
    assert "measured 2026-01-02" in text and "after resuming from checkpoint-300" in text
    assert not (tmp_path / "work" / "shared").exists()  # nothing prepared, nothing trained
