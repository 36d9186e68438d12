"""GPU checks: bf16 agrees with fp32 for every loss on CUDA; CachedMNRL reaches batch 512 with a fraction of the memory.

Marked ``gpu``: the default run (and CI, which has no GPU) deselects them; on a CUDA machine run
``python -m pytest -m gpu -s`` (docs/architecture.md, "GPU checks").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from loss_testkit import one_thread  # noqa: F401 (one_thread is autouse)
from torch import nn

from rerank_lib import CrossEncoder
from rerank_lib.losses import (
    BinaryCrossEntropyLoss,
    CachedMultipleNegativesRankingLoss,
    CrossEntropyLoss,
    LambdaLoss,
    ListMLELoss,
    ListNetLoss,
    MarginMSELoss,
    MSELoss,
    MultipleNegativesRankingLoss,
    PListMLELoss,
    RankNetLoss,
)

DEVICE = "cuda"
pytestmark = pytest.mark.gpu

Q = ["what is the capital of france", "where is berlin", "who reads a book", "what does the dog eat"]
P = ["paris is the capital of france", "berlin is in germany", "a woman reads a book", "the dog eats food"]
N = ["a dog eats food", "the cat sleeps", "the river water", "a blue car"]
DOCS = [[P[0], N[0], N[1]], [P[1], N[1]], [P[2], N[2], N[3], N[0]], [P[3], N[3], N[1]]]
GRADES = [torch.tensor(g) for g in ([2.0, 0.0, 1.0], [1.0, 0.0], [1.0, 0.0, -1.0, 0.0], [3.0, 1.0, 0.0])]

# name -> (build, inputs, labels, outputs)
CASES: dict[str, tuple[Callable[[CrossEncoder], nn.Module], list, object, int]] = {
    "BinaryCrossEntropyLoss": (BinaryCrossEntropyLoss, [Q + Q, P + N], torch.tensor([1.0] * 4 + [0.0] * 4), 1),
    "CrossEntropyLoss": (CrossEntropyLoss, [Q + Q, P + N], torch.tensor([2] * 4 + [0] * 4), 3),
    "MSELoss": (MSELoss, [Q + Q, P + N], torch.tensor([1.0] * 4 + [0.0] * 4), 1),
    "MarginMSELoss": (MarginMSELoss, [Q, P, N], torch.tensor([[3.0, 0.5]] * 4), 1),
    "MultipleNegativesRankingLoss": (lambda m: MultipleNegativesRankingLoss(m, num_negatives=None), [Q, P, N], None, 1),
    "CachedMultipleNegativesRankingLoss": (
        lambda m: CachedMultipleNegativesRankingLoss(m, num_negatives=None, mini_batch_size=5),
        [Q, P, N],
        None,
        1,
    ),
    "ListNetLoss": (ListNetLoss, [Q, DOCS], GRADES, 1),
    "PListMLELoss": (PListMLELoss, [Q, DOCS], GRADES, 1),
    "LambdaLoss": (LambdaLoss, [Q, DOCS], GRADES, 1),
    "RankNetLoss": (RankNetLoss, [Q, DOCS], GRADES, 1),
    "ListMLELoss": (ListMLELoss, [Q, DOCS], GRADES, 1),
}


def make_model(tiny_bert_dir: Path, num_labels: int) -> CrossEncoder:
    """The tiny BERT with its matrices redrawn at std 0.3.

    At BERT's usual init (std 0.02) every pair gets nearly the same score, closer than bf16 can resolve, and bf16
    versus fp32 would compare rounding noise; larger weights give scores that differ the way a trained model's do.
    """
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, num_labels=num_labels, device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.3, generator=generator)
    return model.to(DEVICE).eval()


# LambdaLoss's weights depend on the predicted ranks: bf16 rounding that swaps two close scores changes them.
VALUE_TOLERANCE = {"LambdaLoss": 0.1}


def loss_and_grads(model: CrossEncoder, name: str, autocast: bool) -> tuple[float, torch.Tensor]:
    build, inputs, labels, _ = CASES[name]
    model.zero_grad(set_to_none=False)
    torch.manual_seed(0)
    with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
        loss = build(model)(inputs, labels)
    loss.backward()
    grads = torch.cat([p.grad.float().flatten() for p in model.parameters()])
    return loss.item(), grads


@pytest.mark.parametrize("name", list(CASES))
def test_bf16_autocast_agrees_with_fp32(tiny_bert_dir: Path, name: str) -> None:
    """The trainer's bf16 mode is autocast: the loss arithmetic must stay in float32 and the gradients close."""
    model = make_model(tiny_bert_dir, CASES[name][3])
    value, grads = loss_and_grads(model, name, autocast=False)
    value_bf16, grads_bf16 = loss_and_grads(model, name, autocast=True)
    print(f"{name}: fp32 {value:.5f} bf16 {value_bf16:.5f}")
    assert value_bf16 == pytest.approx(value, rel=VALUE_TOLERANCE.get(name, 0.03), abs=0.01)
    assert torch.isfinite(grads_bf16).all()
    cosine = torch.nn.functional.cosine_similarity(grads, grads_bf16, dim=0)
    assert cosine > 0.98, float(cosine)
    assert (grads_bf16.norm() / grads.norm() - 1).abs() < 0.1


@pytest.mark.parametrize("name", list(CASES))
def test_bf16_weights_agree_with_fp32(tiny_bert_dir: Path, name: str) -> None:
    """A model cast to bf16 outright: the loss upcasts its scores, so values and gradients stay close to fp32."""
    model = make_model(tiny_bert_dir, CASES[name][3])
    value, grads = loss_and_grads(model, name, autocast=False)
    model.to(torch.bfloat16)
    value_bf16, grads_bf16 = loss_and_grads(model, name, autocast=False)
    assert value_bf16 == pytest.approx(value, rel=VALUE_TOLERANCE.get(name, 0.05), abs=0.02)
    cosine = torch.nn.functional.cosine_similarity(grads, grads_bf16, dim=0)
    assert cosine > 0.95, float(cosine)


def test_cached_and_uncached_agree_under_bf16_autocast(tiny_bert_dir: Path) -> None:
    """The replay re-enters autocast, so the cached loss's gradients match the uncached loss's in bf16 too."""
    model = make_model(tiny_bert_dir, 1)
    value, grads = loss_and_grads(model, "MultipleNegativesRankingLoss", autocast=True)
    value_cached, grads_cached = loss_and_grads(model, "CachedMultipleNegativesRankingLoss", autocast=True)
    assert value_cached == pytest.approx(value, rel=0.01)
    assert torch.nn.functional.cosine_similarity(grads, grads_cached, dim=0) > 0.99


def test_cached_mnrl_reaches_batch_512_with_a_fraction_of_the_memory(tiny_bert_dir: Path) -> None:
    rng = random.Random(0)
    words = "the a of city country river mountain paris france berlin cat dog music book car train".split()
    anchors = [" ".join(rng.choices(words, k=12)) + f" {i}" for i in range(512)]
    positives = [" ".join(rng.choices(words, k=120)) for _ in range(512)]
    model = make_model(tiny_bert_dir, 1)

    def peak_bytes(loss: nn.Module) -> tuple[int, float]:
        model.zero_grad(set_to_none=False)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        torch.manual_seed(0)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            value = loss([anchors, positives])
        value.backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - baseline, float(value)

    cached_peak, cached_value = peak_bytes(
        CachedMultipleNegativesRankingLoss(model, num_negatives=4, mini_batch_size=32)
    )
    try:
        uncached_peak, uncached_value = peak_bytes(MultipleNegativesRankingLoss(model, num_negatives=4))
    except torch.cuda.OutOfMemoryError:
        print(f"batch 512: cached peak {cached_peak / 2**20:.0f} MiB; uncached ran out of memory")
        return
    print(f"batch 512: cached peak {cached_peak / 2**20:.0f} MiB, uncached peak {uncached_peak / 2**20:.0f} MiB")
    assert uncached_peak >= 2 * cached_peak
    assert cached_value == pytest.approx(uncached_value, rel=0.01)
