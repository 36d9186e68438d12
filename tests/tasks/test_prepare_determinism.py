"""Re-running prepare on identical inputs writes byte-identical files, so DVC sees nothing changed.

Two fresh processes with a different hash seed and thread count build the same catalog: seeded splits, BM25 mining,
bi-encoder mining and distillation targets from the tiny model, and a conversion between formats.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.own_data_support import write_collection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_prepare_writes_the_same_bytes_in_every_process(tiny_bert_dir: Path, tmp_path: Path) -> None:
    collection = write_collection(tmp_path / "data", queries=30)
    split = {"seed": 3, "group_by": "query", "fractions": {"train": 0.7, "dev": 0.1, "test": 0.2}}
    teacher = {"model": str(tiny_bert_dir), "weight": 1.0}
    params = {
        "prepare": {
            "datasets": {
                "pairs": {"source": {"kind": "file", "path": str(collection.pairs_csv)}, "format": "pairs",
                          "columns": {"document": "passage"}, "split": split, "teacher": teacher},
                "lists": {"source": {"kind": "file", "path": str(collection.pairs_csv), "split": "train"},
                          "columns": {"document": "passage"}, "format": "listwise", "teacher": teacher,
                          "mining": {"method": "bm25", "num_negatives": 2, "range_max": 8, "sampling": "random",
                                     "keep_labelled": True}},
                "tuples": {"source": {"kind": "beir", "folder": str(collection.beir), "split": "train"},
                           "format": "n-tuples",
                           "mining": {"method": "both", "model": str(tiny_bert_dir), "num_negatives": 2,
                                      "range_max": 10}},
                "ranked": {"source": {"kind": "file", "path": str(collection.lists_jsonl)}, "format": "reranking",
                           "split": split},
            }
        },
        "train": {"datasets": {"pairs": {}}},
        "evaluate": {"suite": {"ranked_test": {"kind": "reranking", "dataset": "ranked"}}},
    }  # fmt: skip
    runs = []
    for seed, threads in (("1", "1"), ("2", "2")):
        root = tmp_path / f"run-{seed}"
        root.mkdir()
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": threads, "RERANK_LIB_CACHE": str(root / "c")}
        command = [sys.executable, "-m", "rerank_app.cli", "--root", str(root), "stage", "prepare"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        prepared = root / "data" / "prepared"
        runs.append({str(p.relative_to(prepared)): p.read_bytes() for p in sorted(prepared.rglob("*")) if p.is_file()})
    assert len(runs[0]) >= 9 and runs[0].keys() == runs[1].keys()
    assert [name for name in runs[0] if runs[0][name] != runs[1][name]] == []
