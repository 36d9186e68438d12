"""benchmarks/run_time.py reads what `rerank run` printed: the summary block, not the logs around it."""

from __future__ import annotations

import json

from run_time import run_summary

COLD_RUN = """\
2026-12-06 23:50:38,495 INFO prefect: Starting temporary server on http://127.0.0.1:8300
2026-12-06 23:50:43,955 INFO prefect.flow_runs: Beginning flow run 'agate-capuchin' for flow 'retrain-reranker'

Retraining finished:
  model                /work/artifacts/model
  registered_model     reranker version 1
  promotion            champion (first version)
  stages               prepare: ran, train: ran, package: ran, evaluate: ran, card: ran, register: ran, push: ran
  stage_seconds        {"prepare": 80.1, "train": 1850.0, "evaluate": 600.2}
2026-12-06 00:46:48,416 INFO prefect: Stopping temporary server on http://127.0.0.1:8300
Map: 100%|##########| 2341/2341
done
"""


def test_the_summary_block_is_read_and_the_lines_after_it_are_not() -> None:
    summary = run_summary(COLD_RUN)
    assert list(summary) == ["model", "registered_model", "promotion", "stages", "stage_seconds"]
    assert summary["registered_model"] == "reranker version 1"
    assert json.loads(summary["stage_seconds"])["train"] == 1850.0


def test_output_without_a_summary_reads_as_empty() -> None:
    assert run_summary("Traceback (most recent call last):\n  File x\n") == {}
