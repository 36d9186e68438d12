"""Batch sampler properties, checked without a model: coverage, duplicates, label parity, dataset order, reseeding."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from datasets import Dataset
from torch.utils.data import BatchSampler, SequentialSampler

from rerank_lib.errors import ConfigError, DataValidationError
from rerank_lib.training import (
    CrossEncoderDataCollator,
    CrossEncoderTrainingArguments,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    LengthGroupedBatchSampler,
    MultiDatasetBatchSampler,
    NoDuplicatesBatchSampler,
)
from rerank_lib.training.samplers import build_batch_sampler


def numbered(rows: int, prefix: str = "q") -> Dataset:
    return Dataset.from_dict(
        {"query": [f"{prefix}{i}" for i in range(rows)], "passage": [f"p{i}" for i in range(rows)], "label": [1] * rows}
    )


def epoch_batches(sampler: BatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_default_sampler_covers_every_row_once_and_is_reseeded_per_epoch() -> None:
    sampler = DefaultBatchSampler(numbered(10), batch_size=4, seed=3)
    first, second = epoch_batches(sampler, 0), epoch_batches(sampler, 1)
    assert [len(batch) for batch in first] == [4, 4, 2] and len(sampler) == 3
    assert sorted(i for batch in first for i in batch) == list(range(10))
    assert first != second  # a new order each epoch...
    assert epoch_batches(DefaultBatchSampler(numbered(10), batch_size=4, seed=3), 1) == second  # ...fixed by epoch
    assert epoch_batches(DefaultBatchSampler(numbered(10), batch_size=4, seed=4), 1) != second
    dropping = DefaultBatchSampler(numbered(10), batch_size=4, drop_last=True, seed=3)
    assert [len(batch) for batch in epoch_batches(dropping, 0)] == [4, 4] and len(dropping) == 2


def test_no_duplicates_never_repeats_a_text_inside_a_batch() -> None:
    # Five queries share each passage, so a plain shuffle would put duplicates together almost surely.
    data = Dataset.from_dict(
        {
            "query": [f"q{i}" for i in range(40)],
            "passage": [f"p{i % 8}" for i in range(40)],
            "negatives": [[f"p{(i + 1) % 8}"] for i in range(40)],
            "label": [1.0] * 40,
        }
    )
    sampler = NoDuplicatesBatchSampler(data, batch_size=4, seed=0)
    for epoch in range(3):
        batches = epoch_batches(sampler, epoch)
        assert sorted(i for batch in batches for i in batch) == list(range(40))
        for batch in batches:
            texts = [data[i]["passage"] for i in batch] + [t for i in batch for t in data[i]["negatives"]]
            texts += [data[i]["query"] for i in batch]
            assert len(texts) == len(set(texts)), batch
    assert epoch_batches(sampler, 0) != epoch_batches(sampler, 1)
    dropping = NoDuplicatesBatchSampler(data, batch_size=4, drop_last=True, seed=0)
    assert all(len(batch) == 4 for batch in epoch_batches(dropping, 0))


def test_group_by_label_gives_each_label_an_even_count() -> None:
    labels = [0] * 9 + [1] * 6 + [2] * 5 + [3]  # odd groups and a singleton label
    data = Dataset.from_dict({"a": [f"a{i}" for i in range(21)], "b": ["b"] * 21, "label": labels})
    sampler = GroupByLabelBatchSampler(data, batch_size=6, seed=0)
    seen = []
    for epoch in range(3):
        batches = epoch_batches(sampler, epoch)
        for batch in batches:
            counts = Counter(labels[i] for i in batch)
            assert all(count % 2 == 0 for count in counts.values()), counts
        rows = [i for batch in batches for i in batch]
        assert len(rows) == len(set(rows)) == 8 + 6 + 4  # the odd row out of each label sits the epoch out
        assert 20 not in rows  # label 3 has one row: it can never be paired
        seen.append(rows)
    assert seen[0] != seen[1]
    assert len(sampler) == 3


def test_group_by_label_errors() -> None:
    data = Dataset.from_dict({"a": ["x", "y"], "b": ["u", "v"], "label": [1, 1]})
    with pytest.raises(ConfigError, match="even batch_size"):
        GroupByLabelBatchSampler(data, batch_size=3)
    with pytest.raises(DataValidationError, match="needs a label column"):
        GroupByLabelBatchSampler(data.remove_columns("label"), batch_size=2)
    listwise = Dataset.from_dict({"a": ["x"], "b": [["u", "v"]], "labels": [[1, 0]]})
    with pytest.raises(DataValidationError, match=r"one label per row; column 'labels', row 0"):
        GroupByLabelBatchSampler(listwise, batch_size=2)
    with pytest.raises(DataValidationError, match="no label has two or more rows"):
        GroupByLabelBatchSampler(Dataset.from_dict({"a": ["x", "y"], "label": [0, 1]}), batch_size=2)


def multi(strategy: str, sizes: tuple[int, ...], batch_size: int = 2) -> MultiDatasetBatchSampler:
    samplers = [DefaultBatchSampler(numbered(size), batch_size=batch_size, seed=i) for i, size in enumerate(sizes)]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    return MultiDatasetBatchSampler(samplers, offsets, strategy, seed=5)


def source(index: int, sizes: tuple[int, ...]) -> int:
    return next(i for i in range(len(sizes)) if index < sum(sizes[: i + 1]))


def test_round_robin_alternates_until_the_smallest_dataset_runs_out() -> None:
    sizes = (8, 4, 6)  # 4, 2 and 3 batches
    sampler = multi("round_robin", sizes)
    batches = epoch_batches(sampler, 0)
    assert [source(batch[0], sizes) for batch in batches] == [0, 1, 2, 0, 1, 2]
    assert len(sampler) == 6
    assert all(len({source(i, sizes) for i in batch}) == 1 for batch in batches)


def test_proportional_uses_every_batch_once_in_a_reseeded_order() -> None:
    sizes = (12, 4)
    sampler = multi("proportional", sizes)
    orders = []
    for epoch in range(4):
        batches = epoch_batches(sampler, epoch)
        assert sorted(i for batch in batches for i in batch) == list(range(16))
        assert all(len({source(i, sizes) for i in batch}) == 1 for batch in batches)
        order = [source(batch[0], sizes) for batch in batches]
        assert Counter(order) == {0: 6, 1: 2}
        orders.append(order)
    assert len({tuple(order) for order in orders}) > 1
    assert epoch_batches(multi("proportional", sizes), 2) == epoch_batches(sampler, 2)


def sequential(dataset: Dataset, batch_size: int, drop_last: bool = False, **kwargs: object) -> BatchSampler:
    """A custom batch-sampler factory: rows in order."""
    return BatchSampler(SequentialSampler(range(len(dataset))), batch_size, drop_last)


def test_custom_batch_sampler_class_or_function_and_bad_names() -> None:
    data = numbered(5)
    made = build_batch_sampler(sequential, data, 2, False, ["label"], seed=0)
    assert list(made) == [[0, 1], [2, 3], [4]]
    assert isinstance(
        build_batch_sampler(NoDuplicatesBatchSampler, data, 2, False, ["label"], 0), NoDuplicatesBatchSampler
    )
    args = CrossEncoderTrainingArguments(output_dir="unused", batch_sampler=sequential, use_cpu=True, report_to="none")
    assert args.to_dict()["batch_sampler"].endswith("test_samplers.sequential")
    with pytest.raises(ConfigError, match=r"batch_sampler='random' is not one of 'batch_sampler', 'no_duplicates'"):
        CrossEncoderTrainingArguments(output_dir="unused", batch_sampler="random", use_cpu=True)
    with pytest.raises(ConfigError, match=r"multi_dataset_batch_sampler='mixed' is not one of 'proportional'"):
        CrossEncoderTrainingArguments(output_dir="unused", multi_dataset_batch_sampler="mixed", use_cpu=True)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        DefaultBatchSampler(data, batch_size=0)


def test_collator_listwise_labels_must_all_be_lists() -> None:
    rows = [{"q": "a", "docs": ["x", "y"], "labels": [1, 0]}, {"q": "b", "docs": ["z"], "labels": 1}]
    with pytest.raises(DataValidationError, match=r"Label column 'labels', row 1 of the batch: expected a list"):
        CrossEncoderDataCollator()(rows)
    batch = CrossEncoderDataCollator()([rows[0], {"q": "b", "docs": ["z"], "labels": [2]}])
    assert [label.tolist() for label in batch["label"]] == [[1.0, 0.0], [2.0]]
    assert torch.is_tensor(CrossEncoderDataCollator()([{"q": "a", "d": "b", "score": 0.5}])["label"])


@pytest.fixture
def tiny_tokenizer(tiny_model):
    return tiny_model.tokenizer


def lengths_dataset() -> Dataset:
    # Row i has a passage of i words, so its token length grows with i.
    return Dataset.from_dict(
        {"query": ["q"] * 64, "passage": [" ".join(["word"] * i) for i in range(64)], "label": [0] * 64}
    )


def test_length_grouped_batches_hold_similar_lengths_and_are_reseeded_per_epoch(tiny_tokenizer) -> None:
    dataset = lengths_dataset()
    sampler = LengthGroupedBatchSampler(dataset, batch_size=4, seed=1, megabatch_batches=16, tokenizer=tiny_tokenizer)
    first, second = epoch_batches(sampler, 0), epoch_batches(sampler, 1)
    assert sorted(i for batch in first for i in batch) == list(range(64)) and len(sampler) == 16
    # One mega-batch spans the whole set here, so each batch holds four consecutive lengths...
    assert all(max(batch) - min(batch) == 3 for batch in first)
    # ...while the order of batches is shuffled (not longest first) and changes with the epoch, fixed by the seed.
    assert [max(batch) for batch in first] != sorted((max(batch) for batch in first), reverse=True)
    assert first != second
    again = LengthGroupedBatchSampler(dataset, batch_size=4, seed=1, megabatch_batches=16, tokenizer=tiny_tokenizer)
    assert epoch_batches(again, 1) == second
    # megabatch_batches=1 leaves random batches: lengths are mixed.
    plain = epoch_batches(LengthGroupedBatchSampler(dataset, batch_size=4, seed=1, megabatch_batches=1), 0)
    assert max(max(batch) - min(batch) for batch in plain) > 3
    with pytest.raises(ConfigError, match="megabatch_batches"):
        LengthGroupedBatchSampler(dataset, batch_size=4, megabatch_batches=0)


def test_length_grouped_reduces_padding_on_listwise_rows_and_builds_by_name(tiny_tokenizer) -> None:
    docs = [[" ".join(["w"] * (i % 7 + 1) * 5)] * (1 + i % 3) for i in range(48)]
    dataset = Dataset.from_dict(
        {"query": [f"q{i}" for i in range(48)], "docs": docs, "labels": [[1.0] * len(d) for d in docs]}
    )
    sampler = build_batch_sampler("length_grouped", dataset, 4, False, ["labels"], seed=0, tokenizer=tiny_tokenizer)
    assert isinstance(sampler, LengthGroupedBatchSampler)
    random = build_batch_sampler("batch_sampler", dataset, 4, False, ["labels"], seed=0)
    tokens = [sum(len(d.split()) for d in row) for row in docs]

    def spread(batches: list[list[int]]) -> float:
        return sum(max(tokens[i] for i in b) - min(tokens[i] for i in b) for b in batches) / len(batches)

    assert spread(epoch_batches(sampler, 0)) < spread(epoch_batches(random, 0)) / 2


def test_trainer_builds_length_grouped_batches_with_the_model_tokenizer(tiny_model, tmp_path) -> None:
    from rerank_lib.training import CrossEncoderTrainer
    from tests.rerank_lib.training.training_testkit import make_args

    args = make_args(tmp_path, batch_sampler="length_grouped", max_steps=-1, num_train_epochs=1)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=lengths_dataset())
    sampler = trainer.get_train_dataloader().batch_sampler
    inner = getattr(sampler, "batch_sampler", sampler)  # accelerate may wrap it
    assert isinstance(inner, LengthGroupedBatchSampler)
    # Lengths were counted in the model's tokens ("word" is four word pieces in the tiny vocabulary).
    assert inner._lengths[5] == 1 + 5 * len(tiny_model.tokenizer.tokenize("word"))
    trainer.train()
    assert trainer.state.global_step == 16
