"""One rank of the 2-process CPU data-parallel test (run by torchrun from test_trainer_ddp.py)."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import torch
from training_testkit import flat_weights, make_args, varied_pairs

from rerank_lib import CrossEncoder, CrossEncoderTrainer

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def train(model_dir: str, output: Path, per_device_batch_size: int) -> tuple[CrossEncoderTrainer, CrossEncoder]:
    """The run both sides share: only the per-device batch size differs (global batch 8 either way)."""
    torch.manual_seed(0)
    model = CrossEncoder(model_dir, device="cpu", config_kwargs=NO_DROPOUT)
    # A short collective timeout turns a stuck rank into an error instead of a hang.
    args = make_args(output, max_steps=3, per_device_train_batch_size=per_device_batch_size, ddp_timeout=120)
    trainer = CrossEncoderTrainer(model, args=args, train_dataset=varied_pairs(24))
    trainer.train()
    return trainer, model


def main() -> None:
    model_dir, output = sys.argv[1], Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    trainer, model = train(model_dir, output, per_device_batch_size=4)
    assert trainer.args.world_size == 2, trainer.args.world_size
    wrapper = type(trainer.model_wrapped).__name__
    torch.save({"weights": flat_weights(model), "wrapper": wrapper}, output / f"rank{rank}.pt")
    # Free the DDP wrapper while the process group still exists, then close the group on both ranks together.
    del trainer, model
    gc.collect()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
