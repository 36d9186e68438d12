"""Evaluation under data parallelism: the evaluator runs once (rank 0) and every rank gets its metrics.

Two gloo CPU processes with the same global batch as one process hold the same weights at each evaluation, so
their metrics must equal the one-process run's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ddp_eval_worker import train
from training_testkit import run_two_gloo_processes

WORKER = Path(__file__).with_name("ddp_eval_worker.py")


def test_two_process_evaluation_runs_once_and_matches_one_process(tiny_bert_dir: Path, tmp_path: Path) -> None:
    run_two_gloo_processes(WORKER, str(tiny_bert_dir), str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["calls"] == 2 and ranks[1]["calls"] == 0  # steps 2 and 4, on rank 0 only
    assert ranks[0]["logs"] == ranks[1]["logs"] and len(ranks[0]["logs"]) == 2

    _, single = train(str(tiny_bert_dir), tmp_path / "single", per_device_batch_size=8)
    assert single["calls"] == 2
    for distributed, alone in zip(ranks[0]["logs"], single["logs"], strict=True):
        assert set(distributed) == set(alone) and "eval_dev_ndcg@3" in alone
        for key, value in alone.items():
            assert distributed[key] == pytest.approx(value, abs=1e-6), key
