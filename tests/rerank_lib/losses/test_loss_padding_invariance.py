"""Listwise losses: neither padding nor ignored (negative-grade) documents change the loss value or the gradients.

The sentence-transformers v4 implementations get this wrong in places: PListMLE/ListMLE pad scores with 1e-16,
so every padded slot adds exp(1e-16) = 1 to the Plackett-Luce normalizers of shorter lists; and negative grades
are softmaxed (ListNet) or paired (LambdaLoss) as if they were real grades instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from loss_testkit import TableScorer, one_thread  # noqa: F401 (one_thread is autouse)
from torch import nn

from rerank_lib import CrossEncoder
from rerank_lib.losses import (
    ADRMSELoss,
    LambdaLoss,
    LambdaRankScheme,
    ListMLELoss,
    ListNetLoss,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    PListMLELoss,
    RankNetLoss,
)

LISTWISE: dict[str, Callable[[nn.Module], nn.Module]] = {
    "ListNet": lambda m: ListNetLoss(m),
    "PListMLE": lambda m: PListMLELoss(m),
    "PListMLE-by-grade": lambda m: PListMLELoss(m, respect_input_order=False),
    "ListMLE": lambda m: ListMLELoss(m),
    "ListMLE-by-grade": lambda m: ListMLELoss(m, respect_input_order=False),
    "Lambda-NDCG2PP": lambda m: LambdaLoss(m),
    "Lambda-NDCG1": lambda m: LambdaLoss(m, weighting_scheme=NDCGLoss1Scheme()),
    "Lambda-NDCG2": lambda m: LambdaLoss(m, weighting_scheme=NDCGLoss2Scheme()),
    "Lambda-LambdaRank": lambda m: LambdaLoss(m, weighting_scheme=LambdaRankScheme()),
    "Lambda-NDCG2PP-k2": lambda m: LambdaLoss(m, weighting_scheme=NDCGLoss2PPScheme(), k=2),
    "RankNet": lambda m: RankNetLoss(m),
    "ListNet-minibatch": lambda m: ListNetLoss(m, mini_batch_size=2),
    "ADRMSE": lambda m: ADRMSELoss(m),
}
PER_QUERY_MEAN = {"ListNet", "PListMLE", "PListMLE-by-grade", "ListMLE", "ListMLE-by-grade", "ListNet-minibatch"}

QUERIES = ["q0", "q1", "q2"]
DOCS = [["d0", "d1", "d2", "d3"], ["d4", "d5"], ["d6", "d7", "d8"]]
GRADES = [[2.0, 0.0, 1.0, 3.0], [1.0, 0.0], [0.0, 2.0, 1.0]]
# The same lists with ignored documents mixed in: negative grades of several sizes, including -inf.
DOCS_WITH_IGNORED = [["d0", "x0", "d1", "d2", "d3"], ["x1", "d4", "d5", "x2"], ["d6", "d7", "x3", "d8", "x4", "x5"]]
GRADES_WITH_IGNORED = [
    [2.0, -1.0, 0.0, 1.0, 3.0],
    [-1.0, 1.0, 0.0, -100.0],
    [0.0, 2.0, float("-inf"), 1.0, -1.0, -1.0],
]


def make_model(seed: int = 0) -> TableScorer:
    docs = [d for row in DOCS_WITH_IGNORED for d in row] + [f"y{i}" for i in range(8)]
    return TableScorer.random([*QUERIES, "q3"], docs, seed=seed)


def run(loss_name: str, model: nn.Module, queries: list, docs: list, grades: list) -> tuple[float, torch.Tensor]:
    model.zero_grad()
    loss = LISTWISE[loss_name](model)([queries, docs], [torch.tensor(g, dtype=torch.float) for g in grades])
    loss.backward()
    grad = next(p for p in model.parameters()).grad
    return loss.item(), (torch.zeros(0) if grad is None else grad.clone())


@pytest.mark.parametrize("loss_name", list(LISTWISE))
def test_ignored_documents_change_neither_value_nor_gradients(loss_name: str) -> None:
    model = make_model()
    value, grad = run(loss_name, model, QUERIES, DOCS, GRADES)
    value_ignored, grad_ignored = run(loss_name, model, QUERIES, DOCS_WITH_IGNORED, GRADES_WITH_IGNORED)
    assert value_ignored == pytest.approx(value, rel=1e-6, abs=1e-7)
    assert torch.allclose(grad_ignored, grad, atol=1e-7)
    for doc, query in [("x0", "q0"), ("x1", "q1"), ("x2", "q1"), ("x3", "q2"), ("x5", "q2")]:
        assert model.grad_of(query, doc) == 0.0  # never scored
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("loss_name", list(LISTWISE))
def test_a_longer_or_fully_ignored_row_does_not_change_the_other_rows(loss_name: str) -> None:
    """Padding width comes from the longest list; a row whose documents are all ignored counts for nothing."""
    model = make_model(seed=1)
    value, grad = run(loss_name, model, QUERIES, DOCS, GRADES)
    all_ignored = ["q3", [f"y{i}" for i in range(8)], [-1.0] * 8]
    value_more, grad_more = run(
        loss_name, model, [*QUERIES, all_ignored[0]], [*DOCS, all_ignored[1]], [*GRADES, all_ignored[2]]
    )
    assert value_more == pytest.approx(value, rel=1e-6, abs=1e-7)
    assert torch.allclose(grad_more, grad, atol=1e-7)


@pytest.mark.parametrize("loss_name", sorted(PER_QUERY_MEAN))
def test_per_query_losses_are_the_mean_of_each_list_alone(loss_name: str) -> None:
    """Each list scored alone has no padding; in the batch, the short lists are padded to the longest."""
    model = make_model(seed=2)
    together, grad_together = run(loss_name, model, QUERIES, DOCS_WITH_IGNORED, GRADES_WITH_IGNORED)
    alone = []
    grad_sum = torch.zeros_like(model.logits)
    for row in range(3):
        value, grad = run(loss_name, model, [QUERIES[row]], [DOCS_WITH_IGNORED[row]], [GRADES_WITH_IGNORED[row]])
        alone.append(value)
        grad_sum += grad
    assert together == pytest.approx(sum(alone) / 3, rel=1e-6)
    assert torch.allclose(grad_together, grad_sum / 3, atol=1e-7)


def test_all_documents_ignored_gives_a_zero_loss_that_backpropagates() -> None:
    model = make_model()
    for loss_name in LISTWISE:
        loss = LISTWISE[loss_name](model)([["q0"], [["d0", "d1"]]], [torch.tensor([-1.0, -1.0])])
        assert loss.item() == 0.0
        loss.backward()


def test_single_document_lists_and_equal_grades_are_finite() -> None:
    model = make_model()
    for loss_name in LISTWISE:
        model.zero_grad()
        loss = LISTWISE[loss_name](model)(
            [["q0", "q1"], [["d0"], ["d4", "d5"]]], [torch.tensor([1.0]), torch.tensor([1.0, 1.0])]
        )
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(model.logits.grad).all()


def test_extreme_scores_keep_finite_values_and_gradients() -> None:
    """Large logits overflow exp() in float32; the losses work in log space."""
    model = TableScorer({("q", "a"): 120.0, ("q", "b"): -90.0, ("q", "c"): 0.0, ("r", "a"): 1.0})
    for loss_name in LISTWISE:
        model.zero_grad()
        loss = LISTWISE[loss_name](model)(
            [["q", "r"], [["a", "b", "c"], ["a"]]], [torch.tensor([0.0, 2.0, 1.0]), torch.tensor([1.0])]
        )
        loss.backward()
        assert torch.isfinite(loss), loss_name
        assert torch.isfinite(model.logits.grad).all(), loss_name


def test_mini_batch_size_caps_pairs_per_forward_pass() -> None:
    model = make_model()
    value_all, grad_all = run("ListNet", model, QUERIES, DOCS_WITH_IGNORED, GRADES_WITH_IGNORED)
    model.forward_sizes.clear()
    value_mb, grad_mb = run("ListNet-minibatch", model, QUERIES, DOCS_WITH_IGNORED, GRADES_WITH_IGNORED)
    assert model.forward_sizes == [2, 2, 2, 2, 1]  # 9 kept documents, 2 pairs at a time
    assert value_mb == pytest.approx(value_all, rel=1e-7)
    assert torch.allclose(grad_mb, grad_all)


@pytest.mark.parametrize("loss_name", ["PListMLE", "Lambda-NDCG2PP", "ListNet"])
def test_ignored_documents_on_the_real_model(tiny_model: CrossEncoder, loss_name: str) -> None:
    """On the tiny BERT: parameter gradients are identical with and without ignored documents."""
    tiny_model.eval()
    queries = ["what is the capital of france", "where is berlin"]
    docs = [["paris is the capital", "a dog", "berlin is big"], ["berlin is in germany", "a red car"]]
    grades = [[2.0, 0.0, 1.0], [1.0, 0.0]]
    docs_ignored = [
        ["paris is the capital", "the river", "a dog", "berlin is big"],
        ["cat", "berlin is in germany", "a red car"],
    ]
    grades_ignored = [[2.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0]]

    def value_and_grads(d: list, g: list) -> tuple[float, list[torch.Tensor]]:
        tiny_model.zero_grad()
        loss = LISTWISE[loss_name](tiny_model)([queries, d], [torch.tensor(x) for x in g])
        loss.backward()
        return loss.item(), [p.grad.clone() for p in tiny_model.parameters() if p.grad is not None]

    value, grads = value_and_grads(docs, grades)
    value_ignored, grads_ignored = value_and_grads(docs_ignored, grades_ignored)
    assert value_ignored == pytest.approx(value, rel=1e-6)
    assert len(grads) == len(grads_ignored)
    for a, b in zip(grads, grads_ignored, strict=True):
        assert torch.allclose(a, b, atol=1e-8)
