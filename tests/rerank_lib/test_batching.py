"""Token-sorted inference batches: every pair once, little padding, the tokenizer's own encoding and padding side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from rerank_lib import CrossEncoder
from rerank_lib.batching import batch_count, token_sorted_batches

WORDS = "the cat dog sleeps runs in a big red car with the child who reads a book about music".split()


def pairs_of_varied_length(count: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    return [
        (" ".join(rng.choice(WORDS, rng.integers(1, 4))), " ".join(rng.choice(WORDS, rng.integers(1, 30))))
        for _ in range(count)
    ]


def test_every_pair_once_sorted_longest_first_within_each_chunk(tiny_bert_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    pairs = pairs_of_varied_length(50)
    batches = list(token_sorted_batches(tokenizer, pairs, max_length=16, batch_size=4, chunk_pairs=20))
    assert len(batches) == batch_count(50, 4, chunk_pairs=20) == 5 + 5 + 3
    indices = np.concatenate([batch.indices for batch in batches])
    assert sorted(indices.tolist()) == list(range(50))
    lengths = [batch.features["attention_mask"].sum(axis=1) for batch in batches]
    chunk_of = [int(batch.indices[0]) // 20 for batch in batches]
    for earlier, later, same_chunk in zip(lengths, lengths[1:], np.diff(chunk_of) == 0, strict=False):
        if same_chunk:
            assert earlier.min() >= later.max()  # no batch mixes a long pair into a short batch
    for batch, real in zip(batches, lengths, strict=True):
        assert set(batch.features) == set(tokenizer.model_input_names)
        assert batch.features["input_ids"].dtype == np.int64
        assert batch.features["input_ids"].shape[1] == real.max() <= 16  # padded to the batch's longest only


def test_features_match_the_tokenizer_and_its_padding_side(tiny_bert_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    pairs = pairs_of_varied_length(7)
    for side in ("right", "left"):
        tokenizer.padding_side = side
        (batch,) = token_sorted_batches(tokenizer, pairs, max_length=12, batch_size=8)
        ordered = [pairs[i] for i in batch.indices]
        expected = tokenizer(
            [q for q, _ in ordered],
            [d for _, d in ordered],
            padding=True,
            truncation="longest_first",
            max_length=12,
            return_tensors="np",
        )
        for name, values in batch.features.items():
            np.testing.assert_array_equal(values, expected[name], err_msg=f"{side} padding, {name}")


def test_predict_scores_each_pair_as_a_lone_forward_pass(tiny_model: CrossEncoder) -> None:
    pairs = pairs_of_varied_length(23)
    scores = tiny_model.predict(pairs, batch_size=5, activation_fn=torch.nn.Identity())
    tiny_model.eval()  # predict leaves the model in the mode it found it in
    with torch.inference_mode():
        alone = [float(tiny_model(**tiny_model.tokenize([pair]))[0, 0]) for pair in pairs]
    np.testing.assert_allclose(scores, alone, atol=1e-5)
    assert tiny_model.predict([]).shape == (0,)


@pytest.mark.parametrize("pairs, batch_size, chunk", [(0, 4, 10), (9, 4, 10), (10, 4, 10), (25, 32, 10)])
def test_batch_count(tiny_bert_dir: Path, pairs: int, batch_size: int, chunk: int) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    batches = token_sorted_batches(tokenizer, pairs_of_varied_length(pairs), 16, batch_size, chunk_pairs=chunk)
    assert batch_count(pairs, batch_size, chunk_pairs=chunk) == len(list(batches))
