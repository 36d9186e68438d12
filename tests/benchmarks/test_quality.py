"""benchmarks/quality.py goes on from the seeds its results file already holds for the same recipe."""

from __future__ import annotations

import json
from pathlib import Path

from quality import earlier_runs


def test_seeds_measured_with_this_recipe_are_reused_and_others_are_not(tmp_path: Path) -> None:
    output = tmp_path / "results" / "tune-study-tuned"
    output.parent.mkdir()
    runs = [{"seed": 42, "fingerprint": "recipe-a"}, {"seed": 43, "fingerprint": "recipe-b"}]
    output.with_suffix(".json").write_text(json.dumps({"runs": runs}))

    assert earlier_runs(output, "recipe-a") == {42: runs[0]}
    assert earlier_runs(output, "recipe-c") == {}
    assert earlier_runs(tmp_path / "nothing-yet", "recipe-a") == {}
