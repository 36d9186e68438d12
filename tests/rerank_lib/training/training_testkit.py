"""Helpers for the trainer tests: varied toy data, small losses written here, and argument defaults for fast runs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from torch import nn
from torch.nn import functional as F

from rerank_lib import CrossEncoder, CrossEncoderTrainingArguments
from rerank_lib.losses import BinaryCrossEntropyLoss

REPO = Path(__file__).resolve().parents[3]

WORDS = (
    "capital city country river mountain paris france berlin germany rome italy london england cat dog animal "
    "sleeps runs eats food water big small red blue green man woman child person car bus train plane music song book"
).split()


def varied_pairs(rows: int, seed: int = 0, prefix: str = "") -> Dataset:
    """(query, passage, label) rows with different texts, so that batch order changes the trained weights."""
    rng = random.Random(seed)
    queries, passages, labels = [], [], []
    for _ in range(rows):
        queries.append(prefix + " ".join(rng.sample(WORDS, 3)))
        passages.append(" ".join(rng.sample(WORDS, 6)))
        labels.append(float(rng.random() < 0.5))
    return Dataset.from_dict({"query": queries, "passage": passages, "label": labels})


def make_args(tmp_path: Path, **overrides: Any) -> CrossEncoderTrainingArguments:
    options: dict[str, Any] = dict(
        output_dir=str(tmp_path / "checkpoints"),
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        max_steps=4,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=1,
        disable_tqdm=True,
    )
    options.update(overrides)
    return CrossEncoderTrainingArguments(**options)


def run_two_gloo_processes(worker: Path, *arguments: str, timeout: int = 300) -> None:
    """Run ``worker`` under torchrun in 2 CPU processes (one thread each); a failure or hang fails the test."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    try:
        done = subprocess.run(
            [*command, str(worker), *arguments], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"torchrun timed out; its stderr ended with: {str(error.stderr or '')[-4000:]}")
    assert done.returncode == 0, done.stderr[-4000:]


def flat_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([parameter.detach().reshape(-1).clone() for parameter in model.parameters()])


class RecordingLoss(nn.Module):
    """BCE that remembers the first text of every batch it scored, to see which loss got which dataset."""

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__()
        self.model = model
        self.inner = BinaryCrossEntropyLoss(model)
        self.first_texts: list[str] = []

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> torch.Tensor:
        self.first_texts.extend(inputs[0])
        return self.inner(inputs, labels)


class TwoPartLoss(nn.Module):
    """Returns a dict of components: BCE and a small penalty on the scores' magnitude."""

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = self.model.score_pairs(list(zip(inputs[0], inputs[1], strict=True))).view(-1)
        bce = F.binary_cross_entropy_with_logits(scores, labels.float())
        return {"bce": bce, "magnitude": 0.01 * scores.pow(2).mean()}


class TinyListwiseLoss(nn.Module):
    """Softmax cross-entropy between a query's document scores and its graded labels (list-valued labels)."""

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Sequence[Sequence[Any]], labels: list[torch.Tensor]) -> torch.Tensor:
        losses = []
        for query, docs, grades in zip(inputs[0], inputs[1], labels, strict=True):
            scores = self.model.score_pairs([(query, doc) for doc in docs]).view(-1)
            target = torch.softmax(grades.to(scores.device).float(), dim=0)
            losses.append(-(target * torch.log_softmax(scores, dim=0)).sum())
        return torch.stack(losses).mean()
