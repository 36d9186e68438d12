"""Data parallelism on CPU: 2 gloo processes keep identical weights, equal to 1 process with the same global batch."""

from __future__ import annotations

from pathlib import Path

import torch
from ddp_worker import NO_DROPOUT, train
from training_testkit import flat_weights, run_two_gloo_processes

from rerank_lib import CrossEncoder

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tiny_bert_dir: Path, tmp_path: Path) -> None:
    run_two_gloo_processes(WORKER, str(tiny_bert_dir), str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    assert ranks[0]["wrapper"] == "DistributedDataParallel"
    assert torch.equal(ranks[0]["weights"], ranks[1]["weights"])

    torch.manual_seed(0)
    initial = flat_weights(CrossEncoder(tiny_bert_dir, device="cpu", config_kwargs=NO_DROPOUT))
    _, single = train(str(tiny_bert_dir), tmp_path / "single", per_device_batch_size=8)
    assert (flat_weights(single) - initial).abs().max() > 1e-3  # training moved the weights
    torch.testing.assert_close(ranks[0]["weights"], flat_weights(single), atol=1e-5, rtol=0)
