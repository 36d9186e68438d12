"""benchmarks/quality.py goes on from the seeds its results file already holds for the same recipe."""

from __future__ import annotations

import json
from pathlib import Path

from quality import earlier_runs, training_time_line


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
