"""One rank of the 2-process evaluation test (run by torchrun from test_trainer_ddp_evaluation.py)."""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from ddp_worker import NO_DROPOUT
from training_testkit import make_args, varied_pairs

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator

SAMPLES = [
    {"query": "capital city of france", "positive": ["paris is the capital city of france"], "negative": [
        "a dog eats food", "the river water", "green music", "berlin is in germany"]},
    {"query": "who reads a book", "positive": ["a woman reads a book"], "negative": [
        "the cat sleeps", "a red bus", "rome is in italy"]},
    {"query": "where is berlin", "positive": ["berlin is in germany", "berlin city"], "negative": [
        "a small book", "the blue car", "music song"]},
]  # fmt: skip


class CountingEvaluator(CrossEncoderRerankingEvaluator):
    """Counts its calls in this process."""

    calls = 0

    def __call__(self, model: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        type(self).calls += 1
        return super().__call__(model, *args, **kwargs)


def train(model_dir: str, output: Path, per_device_batch_size: int) -> tuple[CrossEncoderTrainer, dict[str, Any]]:
    """Train 4 steps with the evaluator every 2 steps; return the evaluation logs and the evaluator's call count."""
    torch.manual_seed(0)
    model = CrossEncoder(model_dir, device="cpu", config_kwargs=NO_DROPOUT)
    args = make_args(
        output,
        max_steps=4,
        per_device_train_batch_size=per_device_batch_size,
        eval_strategy="steps",
        eval_steps=2,
        ddp_timeout=120,
    )
    CountingEvaluator.calls = 0
    evaluator = CountingEvaluator(SAMPLES, name="dev", at_k=3)
    trainer = CrossEncoderTrainer(model, args=args, train_dataset=varied_pairs(32), evaluator=evaluator)
    trainer.train()
    logs = [
        {key: value for key, value in row.items() if key.startswith("eval_dev_")}
        for row in trainer.state.log_history
        if any(key.startswith("eval_dev_") for key in row)
    ]
    return trainer, {"logs": logs, "calls": CountingEvaluator.calls}


def main() -> None:
    model_dir, output = sys.argv[1], Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    trainer, record = train(model_dir, output, per_device_batch_size=4)
    assert trainer.args.world_size == 2, trainer.args.world_size
    (output / f"rank{rank}.json").write_text(json.dumps(record))
    del trainer
    gc.collect()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
