"""Mined negatives appended to labelled lists: labelled candidates kept, own documents never mined, BM25 order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rerank_lib.data import add_negatives_to_lists
from rerank_lib.errors import DataValidationError
from rerank_lib.retrieval import BM25

LISTS = pd.DataFrame(
    {
        "query": ["capital of france", "river in germany", "no answer here"],
        "documents": [
            ["paris is the capital of france", "france has many cheeses"],
            ["the rhine is a river in germany", "germany borders france", "the elbe flows north"],
            ["a list without an answer", "another unjudged sentence"],
        ],
        "labels": [[1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0]],
    }
)
OTHERS = [
    "the capital of spain is madrid",
    "rome is the capital of italy",
    "a river flows through vienna",
    "the danube is a long river",
    "cats sleep all day",
    "france and germany are neighbours",
]
CORPUS = [text for texts in LISTS["documents"] for text in texts] + OTHERS


def bm25_order(query: str, excluded: set[str]) -> list[str]:
    texts = list(dict.fromkeys(CORPUS))
    scores = BM25().fit({str(i): text for i, text in enumerate(texts)}).get_scores(query)
    order = np.lexsort((np.arange(len(texts)), -scores))
    return [texts[i] for i in order if texts[i] not in excluded]


def extend(**options) -> pd.DataFrame:
    defaults = {"corpus": CORPUS, "method": "bm25", "use_cache": False, "show_progress_bar": False}
    return add_negatives_to_lists(LISTS, **(defaults | options))


def test_labelled_candidates_stay_first_and_mined_ones_follow_with_label_zero() -> None:
    extended = extend(num_negatives=2)
    for row, original in zip(extended.itertuples(), LISTS.itertuples(), strict=True):
        assert list(row.documents[: len(original.documents)]) == list(original.documents)
        assert list(row.labels[: len(original.labels)]) == list(original.labels)
    for row in extended.iloc[:2].itertuples():
        own = set(LISTS.set_index("query").loc[row.query, "documents"])
        mined = list(row.documents[len(own) :])
        assert mined == bm25_order(row.query, own)[:2]
        assert list(row.labels[len(own) :]) == [0.0, 0.0]
    assert extended.attrs["mining"]["lists_extended"] == 2


def test_a_list_without_a_positive_is_left_as_it_was() -> None:
    extended = extend(num_negatives=2)
    assert list(extended.iloc[2]["documents"]) == list(LISTS.iloc[2]["documents"])
    assert list(extended.iloc[2]["labels"]) == [0.0, 0.0]


def test_random_sampling_is_seeded_and_never_repeats_a_list_document() -> None:
    first = extend(num_negatives=3, sampling="random", seed=5, range_max=8)
    again = extend(num_negatives=3, sampling="random", seed=5, range_max=8)
    assert first["documents"].tolist() == again["documents"].tolist()
    for row in first.itertuples():
        assert len(set(row.documents)) == len(row.documents)


def test_input_without_any_positive_or_with_bad_labels_is_refused() -> None:
    with pytest.raises(DataValidationError, match="no list has a positive"):
        add_negatives_to_lists(LISTS.iloc[2:], corpus=CORPUS, method="bm25", use_cache=False)
    broken = LISTS.assign(labels=[[1.0], [1.0, 0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(DataValidationError, match=r"column 'labels', row 0: 1 labels for 2 documents"):
        add_negatives_to_lists(broken, corpus=CORPUS, method="bm25", use_cache=False)
