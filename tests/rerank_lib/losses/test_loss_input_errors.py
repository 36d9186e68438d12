"""Wrong inputs fail before any forward pass, with a message that names the loss, the column and the row."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from loss_testkit import TableScorer, one_thread  # noqa: F401 (one_thread is autouse)
from torch import nn

from rerank_lib.errors import DataValidationError
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

TEXTS = ["q0", "q1"]
DOCS = ["d0", "d1"]
MODEL = TableScorer.random(TEXTS + ["d0", "d1", "n0", "n1"], DOCS + ["n0", "n1", "q0", "q1"])

POINTWISE: dict[str, Callable[[nn.Module], nn.Module]] = {
    "BinaryCrossEntropyLoss": BinaryCrossEntropyLoss,
    "MSELoss": MSELoss,
}
LISTWISE: dict[str, Callable[[nn.Module], nn.Module]] = {
    "ListNetLoss": ListNetLoss,
    "PListMLELoss": PListMLELoss,
    "ListMLELoss": ListMLELoss,
    "LambdaLoss": LambdaLoss,
    "RankNetLoss": RankNetLoss,
}
CONTRASTIVE: dict[str, Callable[[nn.Module], nn.Module]] = {
    "MultipleNegativesRankingLoss": MultipleNegativesRankingLoss,
    "CachedMultipleNegativesRankingLoss": CachedMultipleNegativesRankingLoss,
}


def assert_fails(call: Callable[[], object], *fragments: str) -> None:
    with pytest.raises(DataValidationError) as caught:
        call()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ----- wrong number of columns -----
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_column_count(name: str) -> None:
    loss = POINTWISE[name](MODEL)
    assert_fails(lambda: loss([TEXTS, DOCS, DOCS], torch.tensor([1.0, 0.0])), name, "(a, b)", "got 3")
    assert_fails(lambda: loss([TEXTS], torch.tensor([1.0, 0.0])), name, "got 1")


def test_cross_entropy_column_count() -> None:
    loss = CrossEntropyLoss(TableScorerMulti())
    assert_fails(lambda: loss([TEXTS], torch.tensor([1, 0])), "CrossEntropyLoss", "got 1")


@pytest.mark.parametrize("name", list(LISTWISE))
def test_listwise_column_count(name: str) -> None:
    loss = LISTWISE[name](MODEL)
    labels = [torch.tensor([1.0]), torch.tensor([0.0])]
    assert_fails(lambda: loss([TEXTS, [["d0"], ["d1"]], DOCS], labels), name, "(query, [documents])", "got 3")


@pytest.mark.parametrize("name", list(CONTRASTIVE))
def test_contrastive_column_count(name: str) -> None:
    assert_fails(lambda: CONTRASTIVE[name](MODEL)([TEXTS]), name, "(anchor, positive", "got 1")


def test_margin_mse_column_count() -> None:
    assert_fails(lambda: MarginMSELoss(MODEL)([TEXTS, DOCS], torch.tensor([1.0, 2.0])), "MarginMSELoss", "got 2")


def test_columns_of_different_lengths() -> None:
    assert_fails(lambda: MSELoss(MODEL)([TEXTS, ["d0"]], torch.tensor([1.0, 0.0])), "different numbers of rows")


# ----- labels of the wrong shape -----
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_label_shape(name: str) -> None:
    loss = POINTWISE[name](MODEL)
    assert_fails(lambda: loss([TEXTS, DOCS], torch.ones(2, 3)), name, "shape (2,)", "(2, 3)")
    assert_fails(lambda: loss([TEXTS, DOCS], torch.ones(3)), name, "2 rows but 3 labels")
    assert_fails(lambda: loss([TEXTS, DOCS], [torch.ones(2), torch.ones(2)]), name, "a list per row")
    assert_fails(lambda: loss([TEXTS, DOCS], None), name, "needs a label column")
    assert_fails(lambda: loss([TEXTS, DOCS], torch.tensor([1.0, float("nan")])), "row 1", "not a finite")


def test_bce_and_ce_label_ranges() -> None:
    assert_fails(lambda: BinaryCrossEntropyLoss(MODEL)([TEXTS, DOCS], torch.tensor([1.0, 2.0])), "row 1", "[0, 1]")
    loss = CrossEntropyLoss(TableScorerMulti())
    assert_fails(lambda: loss([TEXTS, DOCS], torch.tensor([1, 3])), "row 1", "[0, 3)")
    assert_fails(lambda: loss([TEXTS, DOCS], torch.tensor([0.5, 1.0])), "row 0", "class id")


def test_margin_mse_label_shape() -> None:
    loss = MarginMSELoss(MODEL)
    inputs = [TEXTS, DOCS, ["n0", "n1"]]
    assert_fails(lambda: loss(inputs, torch.ones(2, 5)), "MarginMSELoss", "(2, 1) or (2, 2)", "(2, 5)")
    assert_fails(lambda: loss(inputs, [torch.ones(2), torch.ones(3)]), "same number of labels")
    assert_fails(lambda: loss(inputs, None), "needs a label column")


@pytest.mark.parametrize("name", list(LISTWISE))
def test_listwise_label_shape(name: str) -> None:
    loss = LISTWISE[name](MODEL)
    docs = [["d0", "d1"], ["d1"]]
    assert_fails(lambda: loss([TEXTS, docs], torch.tensor([1.0, 0.0])), name, "list of grades per row")
    assert_fails(lambda: loss([TEXTS, docs], [torch.tensor([1.0]), torch.tensor([0.0])]), "row 0 has 2 documents")
    assert_fails(lambda: loss([TEXTS, docs], [1.0, 0.0]), "row 0", "single number")
    assert_fails(lambda: loss([TEXTS, docs], [torch.tensor([1.0, 0.0])]), "2 rows but 1 label lists")
    assert_fails(lambda: loss([TEXTS, docs], None), name, "needs a label column")
    assert_fails(lambda: loss([TEXTS, docs], [torch.tensor([1.0, float("nan")]), torch.tensor([0.0])]), "row 0", "NaN")


@pytest.mark.parametrize("name", list(CONTRASTIVE))
def test_contrastive_losses_take_no_labels(name: str) -> None:
    assert_fails(lambda: CONTRASTIVE[name](MODEL)([TEXTS, DOCS], torch.ones(2)), name, "takes no labels")


# ----- a list column where a string column is expected, and the reverse -----
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_list_column(name: str) -> None:
    loss = POINTWISE[name](MODEL)
    assert_fails(
        lambda: loss([TEXTS, [["d0", "d1"], ["d1"]]], torch.ones(2)),
        name,
        "column 1 (b), row 0",
        "listwise loss",
    )


@pytest.mark.parametrize("name", list(CONTRASTIVE))
def test_contrastive_list_column(name: str) -> None:
    assert_fails(lambda: CONTRASTIVE[name](MODEL)([TEXTS, DOCS, [["n0"], "n1"]]), name, "column 2 (negative_1), row 0")


def test_margin_mse_list_column() -> None:
    assert_fails(
        lambda: MarginMSELoss(MODEL)([TEXTS, [["d0"], ["d1"]], DOCS], torch.ones(2)), "column 1 (positive), row 0"
    )


@pytest.mark.parametrize("name", list(LISTWISE))
def test_listwise_wrong_column_kinds(name: str) -> None:
    loss = LISTWISE[name](MODEL)
    labels = [torch.tensor([1.0]), torch.tensor([0.0])]
    assert_fails(lambda: loss([[["q0"], "q1"], [["d0"], ["d1"]]], labels), "column 0 (query), row 0")
    assert_fails(lambda: loss([TEXTS, ["d0", "d1"]], labels), "column 1 (documents), row 0", "list of texts")
    assert_fails(lambda: loss([TEXTS, [["d0"], [3]]], labels), "row 1, item 0")
    assert_fails(lambda: loss([TEXTS, "d0"], labels), "column 1 (documents)", "one value per row")


# ----- empty lists -----
@pytest.mark.parametrize("name", list(LISTWISE))
def test_listwise_empty_document_list(name: str) -> None:
    loss = LISTWISE[name](MODEL)
    assert_fails(
        lambda: loss([TEXTS, [["d0"], []]], [torch.tensor([1.0]), torch.tensor([])]),
        name,
        "row 1 is an empty list",
    )


def test_empty_batches() -> None:
    assert_fails(lambda: MSELoss(MODEL)([[], []], torch.ones(0)), "column 0 (a) is empty")
    assert_fails(lambda: ListNetLoss(MODEL)([[], []], []), "column 0 (query) is empty")
    assert_fails(lambda: MultipleNegativesRankingLoss(MODEL)([[], []]), "column 0 (anchor) is empty")
    assert_fails(lambda: MSELoss(MODEL)("q0", torch.ones(1)), "list of columns")


# ----- wrong options -----
class TableScorerMulti(TableScorer):
    """A three-output stand-in, for CrossEntropyLoss."""

    num_labels = 3

    def __init__(self) -> None:
        super().__init__({(q, d): 0.0 for q in TEXTS for d in DOCS})

    def forward(self, pair_ids: torch.Tensor) -> torch.Tensor:
        return self.logits[pair_ids].unsqueeze(1).expand(-1, 3)


@pytest.mark.parametrize(
    "build",
    [MSELoss, MarginMSELoss, MultipleNegativesRankingLoss, CachedMultipleNegativesRankingLoss, *LISTWISE.values()],
)
def test_ranking_losses_need_one_output(build: Callable[[nn.Module], nn.Module]) -> None:
    with pytest.raises(ValueError, match="num_labels=1"):
        build(TableScorerMulti())


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="mini_batch_size"):
        ListNetLoss(MODEL, mini_batch_size=0)
    with pytest.raises(ValueError, match="k must be"):
        LambdaLoss(MODEL, k=0)
    with pytest.raises(ValueError, match="reduction_log"):
        LambdaLoss(MODEL, reduction_log="ten")
    with pytest.raises(ValueError, match="num_negatives"):
        MultipleNegativesRankingLoss(MODEL, num_negatives=-1)
    with pytest.raises(ValueError, match="num_labels > 1"):
        CrossEntropyLoss(MODEL)
