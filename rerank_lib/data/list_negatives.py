"""Mined negatives added to labelled lists: each query keeps the candidates it was judged against and gains documents
from elsewhere in the corpus.

Lists cut from one source page (WikiQA: the sentences of one Wikipedia article) teach which sentence of the page
answers. They never show a passage about another topic, which is most of what a first stage returns in open
retrieval (TREC-DL, BEIR), so a reranker trained on them alone can rank such passages above the answer. Mining the
whole corpus, with the list's own documents excluded, adds them without losing the labelled candidates (which
:func:`~rerank_lib.data.hard_negatives.mine_hard_negatives` on its own would drop: it builds lists from the
positives and the mined negatives only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rerank_lib.data.checks import label_lists, list_values, prefix, require_columns, require_rows, text_values
from rerank_lib.data.formats import DOCUMENTS, LABELS, POSITIVE, QUERY
from rerank_lib.data.hard_negatives import mine_hard_negatives
from rerank_lib.errors import DataValidationError


def add_negatives_to_lists(
    lists: pd.DataFrame,
    model: Any = None,
    *,
    corpus: Sequence[str] | Mapping[str, Any],
    num_negatives: int = 3,
    dataset_name: str = "lists",
    **mining_options: Any,
) -> pd.DataFrame:
    """``lists`` (query, documents, labels) with ``num_negatives`` mined documents (label 0) appended to each list.

    Args:
        lists: listwise rows; a list without a positive (label above 0) is left as it is, since mining needs one.
        model: the bi-encoder for ``method="bi-encoder"``/``"both"`` (unused for BM25).
        corpus: the documents to mine from; every document already in a query's lists is excluded for that query.
        num_negatives: documents added per query (fewer when the mining window holds fewer).
        mining_options: the other options of :func:`~rerank_lib.data.hard_negatives.mine_hard_negatives`
            (``method``, ``range_min``, ``range_max``, ``margin``, ``sampling``, ``seed``, ...).

    The result's ``attrs["mining"]`` holds the miner's counts and ``lists_extended``.
    """
    require_rows(lists, dataset_name)
    require_columns(lists, [QUERY, DOCUMENTS, LABELS], "listwise rows", dataset_name)
    queries = text_values(lists, QUERY, dataset_name)
    documents = list_values(lists, DOCUMENTS, dataset_name)
    labels = label_lists(lists, LABELS, [len(texts) for texts in documents], dataset_name)
    own: dict[str, set[str]] = {}
    anchors: dict[str, str] = {}
    for query, texts, grades in zip(queries, documents, labels, strict=True):
        own.setdefault(query, set()).update(texts)
        positive = next((text for text, grade in zip(texts, grades, strict=True) if grade > 0), None)
        if positive is not None:
            anchors.setdefault(query, positive)
    if not anchors:
        raise DataValidationError(
            f"{prefix(dataset_name)}: no list has a positive (label above 0) to mine negatives against."
        )
    mined = mine_hard_negatives(
        pd.DataFrame({QUERY: list(anchors), POSITIVE: list(anchors.values())}),
        model,
        corpus=corpus,
        num_negatives=num_negatives,
        output_format="listwise",
        list_labels="binary",
        exclude=own,
        dataset_name=dataset_name,
        **mining_options,
    )
    negatives = {query: list(texts[1:]) for query, texts in zip(mined[QUERY], mined[DOCUMENTS], strict=True)}
    out = lists.copy()
    out[DOCUMENTS] = [texts + negatives.get(query, []) for query, texts in zip(queries, documents, strict=True)]
    out[LABELS] = [
        grades + [0.0] * len(negatives.get(query, [])) for query, grades in zip(queries, labels, strict=True)
    ]
    out.attrs["mining"] = {**mined.attrs.get("mining", {}), "lists_extended": sum(q in negatives for q in queries)}
    return out
