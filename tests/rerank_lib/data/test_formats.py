"""Format conversions on small fixed cases, their round trips, and their errors."""

from __future__ import annotations

import pandas as pd
import pytest

from rerank_lib.data import (
    Format,
    detect_format,
    graded_to_binary,
    listwise_to_pairs,
    listwise_to_reranking,
    ntuples_to_triplets,
    pairs_to_listwise,
    pairs_to_triplets,
    reranking_to_listwise,
    scale_labels,
    triplets_to_ntuples,
    triplets_to_pairs,
)
from rerank_lib.data.convert import convert, positive_pairs
from rerank_lib.errors import DataValidationError

PAIRS = pd.DataFrame(
    {
        "query": ["q1", "q2", "q1", "q1", "q2"],
        "document": ["a", "b", "c", "d", "e"],
        "label": [1.0, 0.0, 0.0, 2.0, 3.0],
    }
)
LISTWISE = pd.DataFrame(
    {"query": ["q1", "q2"], "documents": [["a", "c", "d"], ["b", "e"]], "labels": [[1.0, 0.0, 2.0], [0.0, 3.0]]}
)


def test_pairs_group_into_lists_in_first_appearance_order() -> None:
    pd.testing.assert_frame_equal(pairs_to_listwise(PAIRS), LISTWISE)


def test_lists_expand_into_pairs_and_round_trip() -> None:
    expanded = listwise_to_pairs(LISTWISE)
    assert expanded["document"].tolist() == ["a", "c", "d", "b", "e"]
    pd.testing.assert_frame_equal(pairs_to_listwise(expanded), LISTWISE)
    regrouped = PAIRS.sort_values("query", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(listwise_to_pairs(pairs_to_listwise(PAIRS)), regrouped)


def test_graded_to_binary_on_pairs_and_lists() -> None:
    assert graded_to_binary(PAIRS, threshold=2)["label"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert graded_to_binary(LISTWISE, threshold=1)["labels"].tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0]]
    assert PAIRS["label"].tolist() == [1.0, 0.0, 0.0, 2.0, 3.0]  # the input is not modified


def test_reranking_samples_round_trip() -> None:
    binary = graded_to_binary(LISTWISE, threshold=1)
    samples = listwise_to_reranking(binary)
    assert samples.to_dict("records") == [
        {"query": "q1", "positive": ["a", "d"], "negative": ["c"]},
        {"query": "q2", "positive": ["e"], "negative": ["b"]},
    ]
    back = reranking_to_listwise(samples)
    assert back["documents"].tolist() == [["a", "d", "c"], ["e", "b"]]
    pd.testing.assert_frame_equal(listwise_to_reranking(back), samples)


def test_reranking_drops_queries_without_both_labels_unless_asked() -> None:
    lists = pd.DataFrame({"query": ["q", "r"], "documents": [["a"], ["b", "c"]], "labels": [[1.0], [1.0, 0.0]]})
    assert listwise_to_reranking(lists).attrs["dropped_queries"] == 1
    kept = listwise_to_reranking(lists, keep_incomplete=True)
    assert kept.iloc[0]["negative"] == [] and len(reranking_to_listwise(kept)) == 2


def test_triplets_ntuples_and_pairs_round_trips() -> None:
    binary = pd.DataFrame({"query": ["q", "q", "q"], "document": ["p", "n1", "n2"], "label": [1.0, 0.0, 0.0]})
    triplets = pairs_to_triplets(binary)
    assert triplets.values.tolist() == [["q", "p", "n1"], ["q", "p", "n2"]]
    pd.testing.assert_frame_equal(triplets_to_pairs(triplets), binary)
    ntuples = triplets_to_ntuples(triplets, num_negatives=2)
    assert list(ntuples.columns) == ["query", "positive", "negative_1", "negative_2"]
    pd.testing.assert_frame_equal(ntuples_to_triplets(ntuples), triplets)
    assert triplets_to_ntuples(triplets, num_negatives=3).attrs["dropped_negatives"] == 2


def test_scale_labels_and_range_error() -> None:
    frame = pd.DataFrame({"query": ["a", "b"], "document": ["c", "d"], "label": [1.0, 5.0]})
    assert scale_labels(frame, 1, 5)["label"].tolist() == [0.0, 1.0]
    with pytest.raises(DataValidationError, match=r"dataset 'sts': column 'label', row 1: label 5.0 is outside"):
        scale_labels(frame, 0, 4, dataset="sts")


def test_detect_and_convert_between_formats() -> None:
    assert detect_format(PAIRS) == Format.PAIRS and detect_format(LISTWISE) == Format.LISTWISE
    samples = convert(graded_to_binary(PAIRS, 1), "reranking")
    assert detect_format(samples) == Format.RERANKING
    assert convert(samples, "pairs")["label"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    with pytest.raises(DataValidationError, match="negatives must be mined"):
        convert(PAIRS, "n-tuples", dataset="toy")
    assert positive_pairs(PAIRS).values.tolist() == [["q1", "a"], ["q1", "d"], ["q2", "e"]]


def test_conversion_errors_name_dataset_column_and_row() -> None:
    bad = PAIRS.assign(label=[1.0, None, 0.0, 1.0, 1.0])
    with pytest.raises(DataValidationError, match=r"dataset 'toy': column 'label', row 1: missing label"):
        pairs_to_listwise(bad, dataset="toy")
    mismatch = LISTWISE.assign(labels=[[1.0], [0.0, 1.0]])
    with pytest.raises(DataValidationError, match=r"column 'labels', row 0: 1 labels for 3 documents"):
        listwise_to_pairs(mismatch, dataset="toy")
    with pytest.raises(DataValidationError, match=r"pairs need column\(s\).*missing \['label'\]"):
        pairs_to_listwise(PAIRS.drop(columns="label"))
    with pytest.raises(DataValidationError, match="not 0 or 1; convert graded labels"):
        listwise_to_reranking(LISTWISE)
    two_texts = PAIRS.assign(query_id=["1", "2", "1", "1", "1"])
    with pytest.raises(DataValidationError, match=r"column 'query_id', row 4: '1' has two query texts"):
        pairs_to_listwise(two_texts, group_by="query_id")
    with pytest.raises(DataValidationError, match="both a positive and a negative"):
        triplets_to_pairs(pd.DataFrame({"query": ["q", "q"], "positive": ["a", "b"], "negative": ["b", "c"]}))
