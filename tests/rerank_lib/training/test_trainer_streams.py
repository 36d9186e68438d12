"""A dict of streaming datasets: round robin batch by batch, each batch from one stream, each to its own loss."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from accelerate.data_loader import IterableDatasetShard
from datasets import IterableDataset
from training_testkit import RecordingLoss, make_args, varied_pairs

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.errors import ConfigError
from rerank_lib.training.trainer import RoundRobinStreams


def numbered_rows(prefix: str, rows: int) -> Iterator[dict[str, Any]]:
    for index in range(rows):
        yield {"query": f"{prefix} {index}", "passage": "paris is the capital of france", "label": float(index % 2)}


def stream(prefix: str, rows: int) -> IterableDataset:
    """A generator-based stream: no length, read once per pass."""
    return IterableDataset.from_generator(numbered_rows, gen_kwargs={"prefix": prefix, "rows": rows})


class OrderedLoss(RecordingLoss):
    """RecordingLoss that also appends its name to a list shared by all losses: the order batches arrived in."""

    def __init__(self, model: CrossEncoder, name: str, order: list[str]) -> None:
        super().__init__(model)
        self.name, self.order = name, order

    def forward(self, inputs: Sequence[Sequence[str]], labels: torch.Tensor) -> torch.Tensor:
        self.order.append(self.name)
        return super().forward(inputs, labels)


def test_streams_take_turns_and_each_loss_sees_only_its_stream(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    order: list[str] = []
    losses = {name: OrderedLoss(tiny_model, name, order) for name in ("alpha", "beta")}
    train = {"alpha": stream("alpha", 8), "beta": stream("beta", 12)}  # batch 4: alpha runs out after 2 rounds
    evaluation = {"alpha": stream("alpha", 4), "beta": varied_pairs(4).to_iterable_dataset()}
    args = make_args(tmp_path, max_steps=6, per_device_train_batch_size=4, multi_dataset_batch_sampler="round_robin")
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=train, eval_dataset=evaluation, loss=losses)
    trainer.train()

    assert trainer.state.global_step == 6
    # A pass is 2 rounds (4 steps); steps 5 and 6 are the first round of the second pass.
    assert order == ["alpha", "beta"] * 3
    alpha, beta = losses["alpha"].first_texts, losses["beta"].first_texts
    assert alpha == [f"alpha {i}" for i in [*range(8), *range(4)]]
    assert beta == [f"beta {i}" for i in [*range(8), *range(4)]]  # beta's third batch is never reached
    metrics = trainer.evaluate()
    assert metrics["eval_alpha_loss"] > 0 and metrics["eval_beta_loss"] > 0


def test_sharded_streams_deal_whole_batches_to_processes() -> None:
    streams = {"alpha": list(numbered_rows("alpha", 6)), "beta": list(numbered_rows("beta", 9))}
    whole = list(RoundRobinStreams(streams, batch_size=3))
    assert [row["dataset_name"] for row in whole] == ["alpha"] * 3 + ["beta"] * 3 + ["alpha"] * 3 + ["beta"] * 3
    ranks = []
    for rank in range(2):  # accelerate's sharding for two processes, as the trainer's DataLoader gets it
        shard = IterableDatasetShard(
            RoundRobinStreams(streams, batch_size=3), batch_size=3, num_processes=2, process_index=rank
        )
        rows = list(shard)
        batches = [rows[start : start + 3] for start in range(0, len(rows), 3)]
        assert all(len({row["dataset_name"] for row in batch}) == 1 for batch in batches)
        ranks.append(rows)
    assert sorted(row["query"] for row in itertools.chain(*ranks)) == sorted(row["query"] for row in whole)


def test_streams_that_cannot_be_trained_on_are_refused(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    streams = {"alpha": stream("alpha", 4), "beta": stream("beta", 4)}
    with pytest.raises(ConfigError, match=r"streaming datasets \['alpha', 'beta'\] have no size; set .*round_robin"):
        CrossEncoderTrainer(tiny_model, args=make_args(tmp_path), train_dataset=streams)
    mixed = {"alpha": stream("alpha", 4), "beta": varied_pairs(4)}
    with pytest.raises(ConfigError, match=r"Datasets \['alpha'\] stream and \['beta'\] do not"):
        CrossEncoderTrainer(
            tiny_model, args=make_args(tmp_path, multi_dataset_batch_sampler="round_robin"), train_dataset=mixed
        )
    no_steps = make_args(tmp_path, max_steps=-1, multi_dataset_batch_sampler="round_robin")
    with pytest.raises(ConfigError, match="have no length, so set max_steps"):
        CrossEncoderTrainer(tiny_model, args=no_steps, train_dataset=streams)
