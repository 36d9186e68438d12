"""Property-based tests: random valid tables convert without loss; random broken ones fail with a clear error."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_lib.data import (
    graded_to_binary,
    listwise_to_pairs,
    listwise_to_reranking,
    ntuples_to_triplets,
    pairs_to_listwise,
    reranking_to_listwise,
    triplets_to_ntuples,
    validate_for_loss,
)
from rerank_lib.data.convert import convert
from rerank_lib.errors import DataValidationError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
texts = st.text(alphabet="abcdefgh xyz", min_size=1, max_size=6).filter(lambda text: text.strip() != "")
grades = st.integers(min_value=0, max_value=3).map(float)


@st.composite
def pair_tables(draw: st.DrawFn) -> pd.DataFrame:
    queries = draw(st.lists(texts, min_size=1, max_size=4, unique=True))
    rows = draw(st.lists(st.tuples(st.sampled_from(queries), texts, grades), min_size=1, max_size=25))
    return pd.DataFrame(rows, columns=["query", "document", "label"])


def grouped(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows regrouped by query in first-appearance order, as listwise rows hold them."""
    order = {query: index for index, query in enumerate(dict.fromkeys(frame["query"]))}
    return frame.sort_values("query", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


@SETTINGS
@given(pair_tables())
def test_pairs_listwise_round_trip_keeps_every_row(pairs: pd.DataFrame) -> None:
    lists = pairs_to_listwise(pairs)
    assert lists["query"].is_unique and sum(map(len, lists["documents"])) == len(pairs)
    pd.testing.assert_frame_equal(listwise_to_pairs(lists), grouped(pairs), check_dtype=False)
    pd.testing.assert_frame_equal(pairs_to_listwise(listwise_to_pairs(lists)), lists)


@SETTINGS
@given(pair_tables(), st.sampled_from([1.0, 2.0, 3.0]))
def test_binary_lists_and_reranking_samples_round_trip(pairs: pd.DataFrame, threshold: float) -> None:
    lists = graded_to_binary(pairs_to_listwise(pairs), threshold)
    samples = listwise_to_reranking(lists, keep_incomplete=True)
    back = reranking_to_listwise(samples)
    for (docs, labels), (new_docs, new_labels) in zip(
        zip(lists["documents"], lists["labels"], strict=True),
        zip(back["documents"], back["labels"], strict=True),
        strict=True,
    ):
        assert sorted(zip(docs, labels, strict=True)) == sorted(zip(new_docs, new_labels, strict=True))
    pd.testing.assert_frame_equal(listwise_to_reranking(back, keep_incomplete=True), samples)


@SETTINGS
@given(st.lists(st.tuples(texts, texts, st.lists(texts, min_size=2, max_size=2)), min_size=1, max_size=8))
def test_ntuples_triplets_round_trip(rows: list) -> None:
    frame = pd.DataFrame(
        [(f"q{index}:{query}", positive, *negatives) for index, (query, positive, negatives) in enumerate(rows)],
        columns=["query", "positive", "negative_1", "negative_2"],
    )
    pd.testing.assert_frame_equal(triplets_to_ntuples(ntuples_to_triplets(frame), 2), frame)


BREAKERS = {
    "nan label": lambda f, r: f.assign(label=[math.nan if i == r else v for i, v in enumerate(f["label"])]),
    "text label": lambda f, r: f.assign(label=["high" if i == r else v for i, v in enumerate(f["label"])]),
    "missing text": lambda f, r: f.assign(document=[None if i == r else v for i, v in enumerate(f["document"])]),
    "empty text": lambda f, r: f.assign(query=["  " if i == r else v for i, v in enumerate(f["query"])]),
    "list as text": lambda f, r: f.assign(document=[["x"] if i == r else v for i, v in enumerate(f["document"])]),
    "dropped column": lambda f, r: f.drop(columns="label"),
}


@SETTINGS
@given(pair_tables(), st.sampled_from(sorted(BREAKERS)), st.data())
def test_broken_pair_tables_give_a_clear_error(pairs: pd.DataFrame, breaker: str, data: st.DataObject) -> None:
    row = data.draw(st.integers(min_value=0, max_value=len(pairs) - 1))
    broken = BREAKERS[breaker](pairs, row)
    for action in (
        lambda: pairs_to_listwise(broken, dataset="random"),
        lambda: convert(broken, "reranking", dataset="random"),
        lambda: validate_for_loss(broken, "MSELoss", dataset="random"),
    ):
        try:
            action()
        except DataValidationError as error:
            assert "dataset 'random'" in str(error)
        else:
            raise AssertionError(f"{breaker} at row {row} was accepted")


@SETTINGS
@given(pair_tables(), st.data())
def test_broken_label_lists_give_a_clear_error(pairs: pd.DataFrame, data: st.DataObject) -> None:
    lists = pairs_to_listwise(pairs)
    row = data.draw(st.integers(min_value=0, max_value=len(lists) - 1))
    labels = [list(value) for value in lists["labels"]]
    labels[row] = labels[row] + [1.0] if data.draw(st.booleans()) else labels[row][:-1] + [math.nan]
    broken = lists.assign(labels=labels)
    for action in (lambda: listwise_to_pairs(broken, "random"), lambda: validate_for_loss(broken, "ListNetLoss")):
        try:
            action()
        except DataValidationError as error:
            assert f"row {row}" in str(error)
        else:
            raise AssertionError("a broken label list was accepted")
