"""Each loss against an independent reference computed from the same fixed logits."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testkit import (
    TableScorer,
    one_thread,  # noqa: F401 (one_thread is autouse)
    reference_lambda,
    reference_listnet,
    reference_plistmle,
)
from torch import nn

from rerank_lib.losses import (
    BinaryCrossEntropyLoss,
    CrossEntropyLoss,
    LambdaLoss,
    LambdaRankScheme,
    ListMLELoss,
    ListNetLoss,
    MarginMSELoss,
    MSELoss,
    MultipleNegativesRankingLoss,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
    PListMLELambdaWeight,
    PListMLELoss,
    RankNetLoss,
)
from rerank_lib.losses.multiple_negatives_ranking import sample_in_batch_negatives

QUERIES = ["q0", "q1", "q2"]
DOCS = [["d0", "d1", "d2", "d3"], ["d4", "d5"], ["d6", "d7", "d8"]]
GRADES = [[2.0, 0.0, 1.0, 3.0], [1.0, 1.0], [0.0, 2.0, 1.0]]


def listwise_fixture(seed: int = 0) -> tuple[TableScorer, list]:
    model = TableScorer.random(QUERIES, [d for row in DOCS for d in row], seed=seed)
    lists = [([model.value(q, d) for d in docs], grades) for q, docs, grades in zip(QUERIES, DOCS, GRADES, strict=True)]
    return model, lists


def call(loss: nn.Module, docs: list | None = None, grades: list | None = None) -> torch.Tensor:
    docs = DOCS if docs is None else docs
    grades = GRADES if grades is None else grades
    return loss([QUERIES[: len(docs)], docs], [torch.tensor(g) for g in grades])


# ----- pointwise -----
def test_bce_mse_ce_match_their_formulas(tiny_multilabel_model) -> None:
    model = TableScorer({("a", "x"): 1.5, ("b", "y"): -0.5, ("c", "z"): 0.2})
    inputs = [["a", "b", "c"], ["x", "y", "z"]]
    labels = torch.tensor([1.0, 0.0, 0.3])
    logits = torch.tensor([1.5, -0.5, 0.2], dtype=torch.float64)
    expected_bce = -(labels * torch.log(torch.sigmoid(logits)) + (1 - labels) * torch.log(1 - torch.sigmoid(logits)))
    assert BinaryCrossEntropyLoss(model)(inputs, labels).item() == pytest.approx(expected_bce.mean().item(), rel=1e-6)
    weighted = BinaryCrossEntropyLoss(model, pos_weight=3.0)(inputs, labels).item()
    expected_weighted = -(
        3.0 * labels * torch.log(torch.sigmoid(logits)) + (1 - labels) * torch.log(1 - torch.sigmoid(logits))
    )
    assert weighted == pytest.approx(expected_weighted.mean().item(), rel=1e-6)
    assert MSELoss(model)(inputs, labels).item() == pytest.approx(((logits - labels) ** 2).mean().item(), rel=1e-6)
    sigmoid_mse = MSELoss(model, activation_fn=nn.Sigmoid())(inputs, labels).item()
    assert sigmoid_mse == pytest.approx(((torch.sigmoid(logits) - labels) ** 2).mean().item(), rel=1e-6)

    pairs = [("a man sleeps", "a person rests"), ("a cat", "a dog runs")]
    raw = tiny_multilabel_model.score_pairs(pairs).detach().double()
    expected_ce = -(torch.log_softmax(raw, dim=1)[[0, 1], [2, 0]]).mean()
    value = CrossEntropyLoss(tiny_multilabel_model)(
        [[a for a, _ in pairs], [b for _, b in pairs]], torch.tensor([2, 0])
    )
    assert value.item() == pytest.approx(expected_ce.item(), rel=1e-5)


def test_margin_mse_with_margins_and_with_teacher_scores() -> None:
    model = TableScorer({("q", "p"): 2.0, ("q", "n1"): 0.5, ("q", "n2"): -1.0, ("r", "p2"): 1.0, ("r", "m1"): 1.5})
    model2 = TableScorer({**{k: model.value(*k) for k in model.keys}, ("r", "m2"): 0.0})
    inputs = [["q", "r"], ["p", "p2"], ["n1", "m1"], ["n2", "m2"]]
    student = torch.tensor([[2.0 - 0.5, 2.0 + 1.0], [1.0 - 1.5, 1.0 - 0.0]])
    margins = torch.tensor([[1.0, 4.0], [0.5, -1.0]])
    expected = ((student - margins) ** 2).mean().item()
    assert MarginMSELoss(model2)(inputs, margins).item() == pytest.approx(expected, rel=1e-6)
    teacher = torch.tensor([[5.0, 4.0, 1.0], [2.0, 1.5, 3.0]])  # positive minus each negative == margins
    assert MarginMSELoss(model2)(inputs, teacher).item() == pytest.approx(expected, rel=1e-6)
    as_lists = [teacher[0], teacher[1]]  # the collator's form for a list-valued label column
    assert MarginMSELoss(model2)(inputs, as_lists).item() == pytest.approx(expected, rel=1e-6)
    one_negative = MarginMSELoss(model)([["q"], ["p"], ["n1"]], torch.tensor([1.0])).item()
    assert one_negative == pytest.approx((1.5 - 1.0) ** 2, rel=1e-6)


# ----- multiple negatives ranking -----
def test_mnrl_matches_softmax_cross_entropy_over_the_sampled_negatives() -> None:
    anchors = ["a0", "a1", "a2", "a3"]
    positives = ["p0", "p1", "p2", "p3"]
    hard = ["h0", "h1", "h2", "h3"]
    model = TableScorer.random(anchors, positives + hard, seed=3)
    loss = MultipleNegativesRankingLoss(model, num_negatives=2, scale=10.0)
    torch.manual_seed(11)
    value = loss([anchors, positives, hard])
    torch.manual_seed(11)
    sampled = sample_in_batch_negatives(anchors, [positives, hard], 2)
    flat = positives + hard
    expected = []
    for row, anchor in enumerate(anchors):
        texts = [positives[row]] + [flat[c] for c in sampled[row].tolist() if c >= 0] + [hard[row]]
        scores = [10.0 / (1.0 + math.exp(-model.value(anchor, t))) for t in texts]
        expected.append(-(scores[0] - math.log(sum(math.exp(s) for s in scores))))
    assert value.item() == pytest.approx(sum(expected) / len(expected), rel=1e-6)


def test_mnrl_with_all_negatives_and_custom_activation() -> None:
    anchors, positives = ["a0", "a1", "a2"], ["p0", "p1", "p2"]
    model = TableScorer.random(anchors, positives, seed=4)
    value = MultipleNegativesRankingLoss(model, num_negatives=None, scale=2.0, activation_fn=nn.Identity())(
        [anchors, positives]
    )
    expected = []
    for row, anchor in enumerate(anchors):
        scores = [2.0 * model.value(anchor, positives[row])]
        scores += [2.0 * model.value(anchor, p) for j, p in enumerate(positives) if j != row]
        expected.append(-(scores[0] - math.log(sum(math.exp(s) for s in scores))))
    assert value.item() == pytest.approx(sum(expected) / 3, rel=1e-6)


# ----- listwise -----
def test_listnet_matches_reference() -> None:
    model, lists = listwise_fixture()
    assert call(ListNetLoss(model)).item() == pytest.approx(reference_listnet(lists), rel=1e-6)


def test_listnet_with_sigmoid_activation() -> None:
    model, lists = listwise_fixture(seed=2)
    activated = [([1 / (1 + math.exp(-s)) for s in scores], grades) for scores, grades in lists]
    value = call(ListNetLoss(model, activation_fn=nn.Sigmoid())).item()
    assert value == pytest.approx(reference_listnet(activated), rel=1e-6)


@pytest.mark.parametrize("respect_input_order", [True, False])
def test_plistmle_and_listmle_match_reference(respect_input_order: bool) -> None:
    model, lists = listwise_fixture(seed=1)
    weighted = call(PListMLELoss(model, respect_input_order=respect_input_order)).item()
    assert weighted == pytest.approx(reference_plistmle(lists, True, respect_input_order), rel=1e-6)
    plain = call(ListMLELoss(model, respect_input_order=respect_input_order)).item()
    assert plain == pytest.approx(reference_plistmle(lists, False, respect_input_order), rel=1e-6)
    also_plain = call(PListMLELoss(model, lambda_weight=None, respect_input_order=respect_input_order)).item()
    assert also_plain == pytest.approx(plain, rel=1e-7)


def test_plistmle_long_lists_do_not_overflow() -> None:
    docs = [f"d{i}" for i in range(300)]  # 2^300 overflows float32; the weights must stay finite
    model = TableScorer.random(["q"], docs, seed=5)
    grades = [float(300 - i) for i in range(300)]
    value = PListMLELoss(model)([["q"], [docs]], [torch.tensor(grades)])
    assert torch.isfinite(value)
    reference = reference_plistmle([([model.value("q", d) for d in docs], grades)], True, True)
    assert value.item() == pytest.approx(reference, rel=1e-5)


def test_plistmle_custom_rank_discount_takes_the_mask_as_in_sentence_transformers() -> None:
    model, lists = listwise_fixture(seed=6)
    received = []

    def discount(mask: torch.Tensor) -> torch.Tensor:  # the toolkit's signature: the (rows, width) bool mask
        received.append(mask)
        ranks = torch.arange(1, mask.shape[1] + 1, dtype=torch.float).expand(mask.shape)
        return 1.0 / torch.log2(ranks + 1.0)

    value = call(PListMLELoss(model, lambda_weight=PListMLELambdaWeight(rank_discount_fn=discount))).item()
    assert received and received[0].dtype == torch.bool
    assert received[0].sum(dim=1).tolist() == [len(docs) for docs in DOCS]
    expected = []
    for scores, _grades in lists:
        n = len(scores)
        w = [1 / math.log2(r + 1) for r in range(1, n + 1)]
        lse = [math.log(sum(math.exp(s) for s in scores[r:])) for r in range(n)]
        expected.append(-sum(w[r] / sum(w) * (scores[r] - lse[r]) for r in range(n)))
    assert value == pytest.approx(sum(expected) / len(expected), rel=1e-6)


@pytest.mark.parametrize(("convention", "first_rank"), [("zero_based", 0), ("one_based", 1)])
def test_plistmle_rank_conventions_by_name(convention: str, first_rank: int) -> None:
    """zero_based (v4.0.1, the default): 2^(n - r) - 1 with r = 0..n-1; one_based (newer toolkits): r = 1..n."""
    model, lists = listwise_fixture(seed=8)
    weight = PListMLELambdaWeight(convention=convention)
    value = call(PListMLELoss(model, lambda_weight=weight)).item()
    expected = []
    for scores, _grades in lists:
        n = len(scores)
        w = [2.0 ** (n - r) - 1 for r in range(first_rank, n + first_rank)]
        lse = [math.log(sum(math.exp(s) for s in scores[r:])) for r in range(n)]
        expected.append(-sum(w[r] / sum(w) * (scores[r] - lse[r]) for r in range(n)))
    assert value == pytest.approx(sum(expected) / len(expected), rel=1e-6)
    default = call(PListMLELoss(model)).item()
    assert (default == pytest.approx(value, rel=1e-7)) == (convention == "zero_based")
    with pytest.raises(ValueError, match="convention must be one of"):
        PListMLELambdaWeight(convention="two_based")


SCHEMES = {
    "none": NoWeightingScheme,
    "ndcg1": NDCGLoss1Scheme,
    "ndcg2": NDCGLoss2Scheme,
    "lambdarank": LambdaRankScheme,
    "ndcg2pp": NDCGLoss2PPScheme,
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("k", [None, 2])
def test_lambda_loss_matches_reference_for_every_scheme(scheme: str, k: int | None) -> None:
    model, lists = listwise_fixture(seed=7)
    value = call(LambdaLoss(model, weighting_scheme=SCHEMES[scheme](), k=k)).item()
    assert value == pytest.approx(reference_lambda(lists, scheme, k=k), rel=1e-6)


def test_lambda_loss_options_sigma_mu_and_natural_log() -> None:
    model, lists = listwise_fixture(seed=8)
    loss = LambdaLoss(model, weighting_scheme=NDCGLoss2PPScheme(mu=3.0), sigma=0.5, reduction_log="natural")
    expected = reference_lambda(lists, "ndcg2pp", sigma=0.5, mu=3.0, log_base=math.e)
    assert call(loss).item() == pytest.approx(expected, rel=1e-6)


def test_rank_net_is_lambda_loss_without_weights() -> None:
    model, lists = listwise_fixture(seed=9)
    assert call(RankNetLoss(model)).item() == pytest.approx(reference_lambda(lists, "none"), rel=1e-6)


# Hand-checked LambdaLoss: one query, three documents scored 2, 1, 0 with grades 0, 1, 2 (exactly reversed).
# Predicted ranks: doc0 at 1, doc1 at 2, doc2 at 3. maxDCG = 3/log2(2) + 1/log2(3) + 0 = 3 + 1/log2(3).
# Gains in predicted order: G = (0, 1, 3) / maxDCG. Pairs with grade_i > grade_j: (2,1), (3,1), (3,2) by rank,
# with score differences -1, -2, -1; each term is -w * log2(sigmoid(diff)) and the loss is their mean.
_LOG3 = math.log2(3.0)
_MAX_DCG = 3.0 + 1.0 / _LOG3
_G = [0.0, 1.0 / _MAX_DCG, 3.0 / _MAX_DCG]
_D = [1.0, _LOG3, 2.0]
_TERM = {-1: math.log2(1 + math.e), -2: math.log2(1 + math.e**2)}  # -log2(sigmoid(d)) for d = -1, -2
_DELTA1 = 1.0 - 1.0 / _LOG3  # NDCG-Loss2 delta for rank distance 1: 1/log2(2) - 1/log2(3)
_DELTA2 = 1.0 / _LOG3 - 0.5  # rank distance 2: 1/log2(3) - 1/log2(4)
_LAMBDARANK = [
    (1 / _D[0] - 1 / _D[1]) * _G[1],  # ranks (2,1): |1/D2 - 1/D1| * |G2 - G1|
    (1 / _D[0] - 1 / _D[2]) * _G[2],  # ranks (3,1)
    (1 / _D[1] - 1 / _D[2]) * (_G[2] - _G[1]),  # ranks (3,2)
]
_NDCG2 = [_DELTA1 * _G[1], _DELTA2 * _G[2], _DELTA1 * (_G[2] - _G[1])]
_TERMS = [_TERM[-1], _TERM[-2], _TERM[-1]]
HAND_CHECKED = {
    "none": sum(_TERMS) / 3,
    "lambdarank": sum(w * t for w, t in zip(_LAMBDARANK, _TERMS, strict=True)) / 3,
    "ndcg2": sum(w * t for w, t in zip(_NDCG2, _TERMS, strict=True)) / 3,
    "ndcg2pp": sum((10 * a + b) * t for a, b, t in zip(_NDCG2, _LAMBDARANK, _TERMS, strict=True)) / 3,
    # NDCG-Loss1 counts all 9 ordered pairs of valid documents, weight G_i / D_i; doc0's gain is 0, and a pair
    # with itself has sigmoid(0) = 1/2, i.e. a term of exactly 1.
    "ndcg1": (
        _G[1]
        / _D[1]
        * (math.log2(1 + math.exp(1)) + 1 + math.log2(1 + math.exp(-1)))  # rank 2 vs ranks 1, 2, 3: diffs -1, 0, 1
        + _G[2] / _D[2] * (math.log2(1 + math.exp(2)) + math.log2(1 + math.exp(1)) + 1)  # rank 3: diffs -2, -1, 0
    )
    / 9,
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_lambda_loss_hand_checked(scheme: str) -> None:
    model = TableScorer({("q", "d0"): 2.0, ("q", "d1"): 1.0, ("q", "d2"): 0.0})
    value = LambdaLoss(model, weighting_scheme=SCHEMES[scheme]())(
        [["q"], [["d0", "d1", "d2"]]], [torch.tensor([0, 1, 2])]
    )
    assert value.item() == pytest.approx(HAND_CHECKED[scheme], rel=1e-6)
    assert HAND_CHECKED[scheme] == pytest.approx(reference_lambda([([2, 1, 0], [0, 1, 2])], scheme), rel=1e-12)


def test_listwise_gradients_match_autograd_on_the_reference() -> None:
    """Gradients, not only values: compare with autograd through a per-list float64 re-implementation."""
    model, _ = listwise_fixture(seed=10)
    loss = call(LambdaLoss(model))
    loss.backward()
    logits = model.logits.detach().double().requires_grad_()
    rows = []
    for q, docs, grades in zip(QUERIES, DOCS, GRADES, strict=True):
        rows.append((torch.stack([logits[model.position[(q, d)]] for d in docs]), grades))
    total, count = logits.new_zeros(()), 0
    for scores, grades in rows:
        order = sorted(range(len(grades)), key=lambda i: -scores[i].item())
        s = scores[order]
        y = [grades[i] for i in order]
        ideal = sorted(grades, reverse=True)
        max_dcg = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
        gain = [(2**g - 1) / max_dcg for g in y]
        for i in range(len(y)):
            for j in range(len(y)):
                if y[i] > y[j]:
                    ndcg2 = abs(1 / math.log2(1 + abs(i - j)) - 1 / math.log2(2 + abs(i - j))) * abs(gain[i] - gain[j])
                    lrank = abs(1 / math.log2(i + 2) - 1 / math.log2(j + 2)) * abs(gain[i] - gain[j])
                    total = total - (10 * ndcg2 + lrank) * torch.nn.functional.logsigmoid(s[i] - s[j]) / math.log(2)
                    count += 1
    (total / count).backward()
    assert torch.allclose(model.logits.grad.double(), logits.grad, atol=1e-6)
