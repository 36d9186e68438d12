"""CachedMultipleNegativesRankingLoss: same loss and gradients as the uncached loss, bounded forward passes."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testkit import TableScorer, one_thread  # noqa: F401 (one_thread is autouse)

from rerank_lib import CrossEncoder
from rerank_lib.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss
from rerank_lib.losses.multiple_negatives_ranking import sample_in_batch_negatives

ANCHORS = [
    "what is the capital of france",
    "where is berlin",
    "who reads a book",
    "what does the dog eat",
    "which river is in rome",
]
POSITIVES = ["paris is the capital", "berlin is in germany", "a woman reads a book", "the dog eats food", "a river"]
HARD = ["berlin is big", "paris is in france", "a man reads music", "the cat eats", "a mountain in italy"]


def parameter_grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def assert_grads_close(actual: list[torch.Tensor], expected: list[torch.Tensor], rel: float) -> None:
    """Equal up to rounding: mini-batches accumulate the per-pair gradients in a different order."""
    actual_flat = torch.cat([g.flatten() for g in actual])
    expected_flat = torch.cat([g.flatten() for g in expected])
    assert expected_flat.norm() > 0
    assert (actual_flat - expected_flat).norm() <= rel * expected_flat.norm()


def value_and_grads(loss: torch.nn.Module, model: torch.nn.Module, inputs: list, seed: int = 3, scale: float = 1.0):
    model.zero_grad()
    torch.manual_seed(seed)  # the in-batch negatives are drawn from torch's global generator
    value = loss(inputs)
    (value * scale).backward()
    return value.item(), parameter_grads(model)


@pytest.mark.parametrize(("mini_batch_size", "num_negatives"), [(1, 2), (3, 2), (1000, 2), (3, None)])
def test_cached_equals_uncached_on_the_tiny_model(
    tiny_model: CrossEncoder, mini_batch_size: int, num_negatives: int | None
) -> None:
    """In float64 the only differences left are rounding: any real mismatch would be orders of magnitude larger."""
    tiny_model.double().eval()  # no dropout: the uncached loss runs one forward pass, the cached one several
    inputs = [ANCHORS, POSITIVES, HARD]
    uncached = MultipleNegativesRankingLoss(tiny_model, num_negatives=num_negatives)
    value, grads = value_and_grads(uncached, tiny_model, inputs)
    cached = CachedMultipleNegativesRankingLoss(
        tiny_model, num_negatives=num_negatives, mini_batch_size=mini_batch_size
    )
    value_cached, grads_cached = value_and_grads(cached, tiny_model, inputs)
    assert value_cached == pytest.approx(value, rel=1e-9)
    assert_grads_close(grads_cached, grads, rel=1e-9)


def test_cached_equals_uncached_in_float32(tiny_model: CrossEncoder) -> None:
    """float32 sums the per-pair gradients in another order; the gradients cancel a lot, so the tolerance is wider."""
    tiny_model.eval()
    inputs = [ANCHORS, POSITIVES, HARD]
    value, grads = value_and_grads(MultipleNegativesRankingLoss(tiny_model), tiny_model, inputs)
    cached = CachedMultipleNegativesRankingLoss(tiny_model, mini_batch_size=3)
    value_cached, grads_cached = value_and_grads(cached, tiny_model, inputs)
    assert value_cached == pytest.approx(value, rel=1e-5)
    assert_grads_close(grads_cached, grads, rel=2e-3)


@pytest.mark.parametrize("mini_batch_size", [1, 3, 1000])
def test_cached_equals_uncached_exactly_on_fixed_logits(mini_batch_size: int) -> None:
    model = TableScorer.random(ANCHORS, POSITIVES + HARD, seed=1)
    inputs = [ANCHORS, POSITIVES, HARD]
    value, grads = value_and_grads(MultipleNegativesRankingLoss(model, num_negatives=3), model, inputs)
    model.forward_sizes.clear()
    cached = CachedMultipleNegativesRankingLoss(model, num_negatives=3, mini_batch_size=mini_batch_size)
    value_cached, grads_cached = value_and_grads(cached, model, inputs)
    assert value_cached == pytest.approx(value, rel=1e-6)
    assert torch.allclose(grads_cached[0], grads[0], atol=1e-7)
    pairs = 5 * (1 + 3 + 1)
    assert max(model.forward_sizes) == min(mini_batch_size, pairs)
    assert sum(model.forward_sizes) == 2 * pairs  # a no-grad pass, then the replay with gradients


def test_gradient_scaling_reaches_the_replay() -> None:
    """The trainer may scale the loss (gradient accumulation, fp16 scaler); the replay must honour it."""
    model = TableScorer.random(ANCHORS, POSITIVES + HARD, seed=2)
    inputs = [ANCHORS, POSITIVES]
    _, grads = value_and_grads(MultipleNegativesRankingLoss(model), model, inputs, scale=3.0)
    _, grads_cached = value_and_grads(
        CachedMultipleNegativesRankingLoss(model, mini_batch_size=2), model, inputs, scale=3.0
    )
    assert torch.allclose(grads_cached[0], grads[0], atol=1e-7)


def test_dropout_masks_are_replayed(tiny_model: CrossEncoder) -> None:
    """In train mode the replay must reuse each mini-batch's dropout masks, or the gradient is of another loss."""
    tiny_model.double().train()
    inputs = [ANCHORS, POSITIVES, HARD]
    loss = CachedMultipleNegativesRankingLoss(tiny_model, num_negatives=2, mini_batch_size=4)
    value, grads = value_and_grads(loss, tiny_model, inputs, seed=7)
    state_after_cached = torch.get_rng_state()

    # Reference: the same mini-batches scored with gradients in the same order, from the same seed.
    tiny_model.zero_grad()
    torch.manual_seed(7)
    plan = loss.plan(inputs)
    logits = torch.cat(
        [tiny_model.score_pairs(plan.pairs[i : i + 4]).reshape(-1) for i in range(0, len(plan.pairs), 4)]
    )
    reference = loss.loss_from_logits(logits, plan)
    reference.backward()
    assert torch.equal(torch.get_rng_state(), state_after_cached)  # the replay leaves the global RNG untouched
    assert value == pytest.approx(reference.item(), rel=1e-9)
    assert_grads_close(grads, parameter_grads(tiny_model), rel=1e-9)


def test_without_gradients_there_is_no_replay() -> None:
    model = TableScorer.random(ANCHORS, POSITIVES, seed=3)
    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=4)
    torch.manual_seed(0)
    with torch.no_grad():
        value = loss([ANCHORS, POSITIVES])
    torch.manual_seed(0)
    assert value.item() == pytest.approx(MultipleNegativesRankingLoss(model)([ANCHORS, POSITIVES]).item(), rel=1e-6)
    assert not value.requires_grad


def test_mini_batch_size_must_be_positive() -> None:
    model = TableScorer.random(ANCHORS, POSITIVES)
    for bad in (0, -1, None, 2.5):
        with pytest.raises(ValueError, match="mini_batch_size"):
            CachedMultipleNegativesRankingLoss(model, mini_batch_size=bad)


# ----- in-batch negative sampling (shared by both losses) -----
def test_sampling_skips_own_row_and_false_negatives() -> None:
    anchors = ["a", "b", "a", "c"]  # rows 0 and 2 share the anchor: each other's positives are positives too
    positives = ["p0", "p1", "p2", "p0"]  # row 3's positive text equals row 0's
    flat = positives
    for seed in range(20):
        torch.manual_seed(seed)
        sampled = sample_in_batch_negatives(anchors, [positives], num_negatives=3)
        for row, chosen in enumerate(sampled.tolist()):
            texts = [flat[c] for c in chosen if c >= 0]
            assert positives[row] not in texts
            assert all(c % 4 != row for c in chosen if c >= 0)
            if anchors[row] == "a":
                assert set(texts) == {"p1"}  # p0 and p2 are positives of anchor "a", wherever they appear
            assert len(set(c for c in chosen if c >= 0)) == len([c for c in chosen if c >= 0])  # no repeats


def test_sampling_takes_everything_when_num_negatives_is_none_or_too_large() -> None:
    anchors, positives, hard = ["a", "b", "c"], ["p0", "p1", "p2"], ["h0", "h1", "h2"]
    everything = sample_in_batch_negatives(anchors, [positives, hard], num_negatives=None)
    assert everything.tolist() == [[1, 2, 4, 5], [0, 2, 3, 5], [0, 1, 3, 4]]
    too_many = sample_in_batch_negatives(anchors, [positives, hard], num_negatives=50)
    assert sorted(too_many[0].tolist()) == [1, 2, 4, 5]
    none_possible = sample_in_batch_negatives(["a"], [["p"]], num_negatives=4)
    assert none_possible.shape == (1, 0)


def test_sampling_is_reproducible_from_the_seed() -> None:
    torch.manual_seed(5)
    first = sample_in_batch_negatives(ANCHORS, [POSITIVES, HARD], 3)
    torch.manual_seed(5)
    assert torch.equal(first, sample_in_batch_negatives(ANCHORS, [POSITIVES, HARD], 3))
    generator = torch.Generator().manual_seed(5)
    assert torch.equal(first, sample_in_batch_negatives(ANCHORS, [POSITIVES, HARD], 3, generator=generator))


def test_rows_with_fewer_negatives_are_masked_not_padded_with_duplicates() -> None:
    anchors, positives = ["a", "a", "b"], ["p0", "p1", "p2"]  # rows 0 and 1 only have p2 as a negative
    model = TableScorer.random(anchors, positives, seed=4)
    value = MultipleNegativesRankingLoss(model, num_negatives=2, scale=1.0, activation_fn=torch.nn.Identity())(
        [anchors, positives]
    )

    def row_loss(anchor: str, positive: str, negatives: list[str]) -> float:
        scores = [model.value(anchor, positive)] + [model.value(anchor, n) for n in negatives]
        return -(scores[0] - math.log(sum(math.exp(s) for s in scores)))

    expected = (row_loss("a", "p0", ["p2"]) + row_loss("a", "p1", ["p2"]) + row_loss("b", "p2", ["p0", "p1"])) / 3
    assert value.item() == pytest.approx(expected, rel=1e-6)
