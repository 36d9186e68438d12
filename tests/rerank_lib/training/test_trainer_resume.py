"""Exact resume: an interrupted and resumed run ends with the weights of the uninterrupted run (CPU, 1e-6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict
from training_testkit import flat_weights, make_args, varied_pairs
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.losses import BinaryCrossEntropyLoss


class StopAfter(TrainerCallback):
    """Simulates a crash right after the checkpoint of ``step`` is written."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.global_step == self.step:
            control.should_training_stop = True


def run(tiny_bert_dir: Path, output: Path, resume: str | None = None, stop_after: int | None = None) -> CrossEncoder:
    torch.manual_seed(123)  # a different head init than the checkpoint: resuming must overwrite it
    model = CrossEncoder(tiny_bert_dir, device="cpu")
    # Two datasets of 12 and 8 rows, batches of 4: 5 steps per epoch, so step 3 is mid-epoch; dropout stays on.
    train = DatasetDict({"a": varied_pairs(12, 0), "b": varied_pairs(8, 1)})
    args = make_args(
        output,
        max_steps=8,
        save_strategy="steps",
        save_steps=3,
        lr_scheduler_type="linear",
        warmup_steps=2,
        batch_sampler="no_duplicates",
    )
    callbacks = [StopAfter(stop_after)] if stop_after is not None else None
    loss = {"a": BinaryCrossEntropyLoss(model), "b": BinaryCrossEntropyLoss(model)}
    trainer = CrossEncoderTrainer(model, args=args, train_dataset=train, loss=loss, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    return model


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tiny_bert_dir: Path, tmp_path: Path) -> None:
    straight = run(tiny_bert_dir, tmp_path / "straight")
    interrupted = run(tiny_bert_dir, tmp_path / "resumed", stop_after=3)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "checkpoint-3"
    assert (checkpoint / "rng_state.pth").is_file() and (checkpoint / "scheduler.pt").is_file()
    assert not torch.allclose(flat_weights(interrupted), flat_weights(straight), atol=1e-4)
    resumed = run(tiny_bert_dir, tmp_path / "resumed", resume=str(checkpoint))
    torch.testing.assert_close(flat_weights(resumed), flat_weights(straight), atol=1e-6, rtol=0)
