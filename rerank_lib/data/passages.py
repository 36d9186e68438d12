"""Sentences to passages: join each query's consecutive candidate sentences, so training sees passage lengths.

Sentence-level answer-selection data (WikiQA: one Wikipedia sentence per candidate) teaches a reranker on inputs
far shorter than the web passages it is often asked to rank (TREC-DL, MS MARCO: a few sentences each). Joining
each query's candidates, in their file order (the page order in WikiQA), into windows of ``size`` sentences keeps
the labels honest: a passage is as relevant as its most relevant sentence.
"""

from __future__ import annotations

import pandas as pd

from rerank_lib.errors import DataValidationError


def join_consecutive_sentences(
    table: pd.DataFrame, size: int, *, dataset: str = "data", separator: str = " "
) -> pd.DataFrame:
    """Pairs ``(query, document, label)`` regrouped as passages of up to ``size`` consecutive documents per query.

    Rows keep their order within each query (a query's last passage may be shorter); the label of a passage is
    the highest label among its sentences. Other columns are dropped: they describe single sentences.
    """
    if size < 1:
        raise DataValidationError(f"dataset {dataset!r}: passages need at least one sentence each, got size {size}.")
    missing = [column for column in ("query", "document", "label") if column not in table.columns]
    if missing:
        raise DataValidationError(
            f"dataset {dataset!r}: joining sentences into passages needs query, document and label columns "
            f"(missing: {missing})."
        )
    rows: list[tuple[str, str, float]] = []
    for query, group in table.groupby("query", sort=False):
        documents, labels = group["document"].astype(str).tolist(), group["label"].astype(float).tolist()
        for start in range(0, len(documents), size):
            rows.append((query, separator.join(documents[start : start + size]), max(labels[start : start + size])))
    return pd.DataFrame(rows, columns=["query", "document", "label"])
