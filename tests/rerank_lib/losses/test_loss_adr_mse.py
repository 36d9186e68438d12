"""ADRMSELoss against a plain numpy/for-loop reading of the Rank-DistiLLM formula, written here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loss_testkit import TableScorer, one_thread  # noqa: F401 (one_thread is autouse)

from rerank_lib.losses import ADRMSELoss

QUERIES = ["q0", "q1", "q2"]
DOCS = [["d0", "d1", "d2", "d3", "d4"], ["d5", "d6"], ["d7", "d8", "d9"]]
GRADES = [[0.9, 0.1, 0.5, 0.7, 0.2], [0.3, 0.8], [2.0, 2.0, 1.0]]  # teacher scores; a tie in the last list


def reference_adr_mse(lists: list[tuple[list[float], list[float]]], temperature: float, discount: str | None) -> float:
    """sum over documents of w(r) * (r - approx_r)^2, divided by the number of documents.

    r: the document's 1-based position when its list is sorted by grade, highest first (ties: input order).
    approx_r = 1 + sum over the other documents j of its list of 1 / (1 + exp(-(s_j - s_i) / temperature)).
    w(r) = 1 / log2(1 + r) for "log2", 1 / r for "reciprocal", 1 otherwise.
    """
    total, count = 0.0, 0
    for scores, grades in lists:
        kept = [(s, g) for s, g in zip(scores, grades, strict=True) if g >= 0]
        order = sorted(range(len(kept)), key=lambda i: -kept[i][1])
        rank = {index: position + 1 for position, index in enumerate(order)}
        for i, (s_i, _) in enumerate(kept):
            approx = 1.0
            for j, (s_j, _) in enumerate(kept):
                if j != i:
                    approx += 1.0 / (1.0 + np.exp(-(s_j - s_i) / temperature))
            r = rank[i]
            weight = 1 / math.log2(1 + r) if discount == "log2" else 1 / r if discount == "reciprocal" else 1.0
            total += weight * (r - approx) ** 2
            count += 1
    return total / count


def fixture(seed: int) -> tuple[TableScorer, list[tuple[list[float], list[float]]]]:
    model = TableScorer.random(QUERIES, [d for row in DOCS for d in row], seed=seed)
    lists = [([model.value(q, d) for d in docs], g) for q, docs, g in zip(QUERIES, DOCS, GRADES, strict=True)]
    return model, lists


def call(loss: ADRMSELoss, docs: list = DOCS, grades: list = GRADES) -> torch.Tensor:
    return loss([QUERIES[: len(docs)], docs], [torch.tensor(g) for g in grades])


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("discount", ["log2", "reciprocal", None])
def test_values_equal_the_reference(temperature: float, discount: str | None) -> None:
    model, lists = fixture(seed=3)
    value = call(ADRMSELoss(model, temperature=temperature, discount=discount)).item()
    assert value == pytest.approx(reference_adr_mse(lists, temperature, discount), abs=1e-4)


def test_default_is_the_papers_log2_discount_at_temperature_one() -> None:
    model, lists = fixture(seed=4)
    assert call(ADRMSELoss(model)).item() == pytest.approx(reference_adr_mse(lists, 1.0, "log2"), abs=1e-4)


def test_gradients_equal_autograd_on_the_reference_formula() -> None:
    model, lists = fixture(seed=5)
    call(ADRMSELoss(model)).backward()
    scores = [torch.tensor(s, dtype=torch.float64, requires_grad=True) for s, _ in lists]
    total = torch.zeros((), dtype=torch.float64)
    for row, (_, grades) in zip(scores, lists, strict=True):
        order = sorted(range(len(grades)), key=lambda i: -grades[i])
        ranks = torch.empty(len(grades), dtype=torch.float64)
        ranks[order] = torch.arange(1, len(grades) + 1, dtype=torch.float64)
        approx = 1 + torch.sigmoid(row.unsqueeze(0) - row.unsqueeze(1)).sum(dim=1) - 0.5  # minus the diagonal
        total = total + ((ranks - approx) ** 2 / torch.log2(1 + ranks)).sum()
    (total / sum(len(g) for g in GRADES)).backward()
    for row, query, docs in zip(scores, QUERIES, DOCS, strict=True):
        for position, doc in enumerate(docs):
            assert model.grad_of(query, doc) == pytest.approx(float(row.grad[position]), abs=1e-5)


def test_ignored_documents_and_a_longer_list_beside_change_nothing() -> None:
    docs = [row + [f"x{i}"] for i, row in enumerate(DOCS)]
    model = TableScorer.random([*QUERIES, "q9"], [d for row in docs for d in row] + ["y0", "y1"], seed=6)
    plain = call(ADRMSELoss(model)).item()
    assert call(ADRMSELoss(model), docs, [g + [-1.0] for g in GRADES]).item() == pytest.approx(plain, abs=1e-6)
    only_first = call(ADRMSELoss(model), DOCS[:1], GRADES[:1]).item()
    lists = [([model.value("q0", d) for d in DOCS[0]], GRADES[0])]
    assert only_first == pytest.approx(reference_adr_mse(lists, 1.0, "log2"), abs=1e-4)


def test_a_perfect_ranking_at_low_temperature_costs_almost_nothing() -> None:
    table = {("q", f"d{i}"): 10.0 * (5 - i) for i in range(5)}
    docs = [["q"], [[f"d{i}" for i in range(5)]]]
    value = ADRMSELoss(TableScorer(table), temperature=0.1)(docs, [torch.arange(5.0, 0, -1)])
    assert value.item() < 1e-6
    reversed_value = ADRMSELoss(TableScorer(table), temperature=0.1)(docs, [torch.arange(1.0, 6.0)])
    assert reversed_value.item() > 1.0


def test_invalid_options_are_refused() -> None:
    model = TableScorer({("a", "b"): 0.0})
    with pytest.raises(ValueError, match="temperature must be positive"):
        ADRMSELoss(model, temperature=0)
    with pytest.raises(ValueError, match="discount must be one of"):
        ADRMSELoss(model, discount="log10")
