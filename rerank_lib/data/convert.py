"""Convert a table from whatever format it is in to the format a loss or evaluator needs.

Every route goes through the two formats that hold everything: labelled pairs and listwise rows. Routes that
would have to invent data (n-tuples from pairs or triplets: which negatives, how many?) are refused; mining
(:func:`~rerank_lib.data.hard_negatives.mine_hard_negatives`) is the way to get those.
"""

from __future__ import annotations

import pandas as pd

from rerank_lib.data.checks import label_values
from rerank_lib.data.formats import (
    DOCUMENT,
    LABEL,
    PAIR_COLUMNS,
    POSITIVE,
    QUERY,
    Format,
    detect_format,
    listwise_to_pairs,
    listwise_to_reranking,
    ntuples_to_triplets,
    pairs_to_listwise,
    pairs_to_triplets,
    reranking_to_listwise,
    triplets_to_pairs,
)
from rerank_lib.errors import DataValidationError


def to_pairs(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Any format as labelled pairs ``(query, document, label)`` (a label-less pair table stays label-less)."""
    source = detect_format(frame)
    if source == Format.PAIRS:
        return frame
    if source == Format.LISTWISE:
        return listwise_to_pairs(frame, dataset)
    if source == Format.RERANKING:
        return listwise_to_pairs(reranking_to_listwise(frame, dataset), dataset)
    if source == Format.NTUPLES:
        frame = ntuples_to_triplets(frame, dataset)
    return triplets_to_pairs(frame, dataset)


def positive_pairs(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """(query, positive) rows from any format, for mining: pairs labelled above 0, or every pair if unlabelled."""
    if detect_format(frame) in (Format.TRIPLETS, Format.NTUPLES):
        return frame[[QUERY, POSITIVE]].drop_duplicates().reset_index(drop=True)
    pairs = to_pairs(frame, dataset)
    if LABEL in pairs.columns:
        pairs = pairs[[value > 0 for value in label_values(pairs, LABEL, dataset)]]
    return pairs[[QUERY, DOCUMENT]].rename(columns={DOCUMENT: POSITIVE}).reset_index(drop=True)


def convert(
    frame: pd.DataFrame,
    target: Format | str,
    *,
    group_by: str | None = None,
    keep_incomplete: bool = False,
    dataset: str | None = None,
) -> pd.DataFrame:
    """``frame`` in the ``target`` format; ``group_by`` (default ``query``) groups pairs into lists."""
    target = Format(target)
    source = detect_format(frame)
    if source == target:
        return frame
    if target == Format.NTUPLES:
        raise DataValidationError(
            f"dataset {dataset!r}: cannot make n-tuples from {source.value}: the negatives must be mined."
        )
    if target == Format.TRIPLETS:
        if source == Format.NTUPLES:
            return ntuples_to_triplets(frame, dataset)
        return pairs_to_triplets(_pairs_with_labels(to_pairs(frame, dataset), dataset), dataset)
    if target == Format.PAIRS:
        return to_pairs(frame, dataset)
    if source == Format.PAIRS:
        listwise = pairs_to_listwise(_pairs_with_labels(frame, dataset), group_by or QUERY, dataset)
    elif source == Format.RERANKING:
        listwise = reranking_to_listwise(frame, dataset)
    elif source == Format.LISTWISE:
        listwise = frame
    else:
        listwise = pairs_to_listwise(to_pairs(frame, dataset), QUERY, dataset)
    if target == Format.LISTWISE:
        return listwise
    return listwise_to_reranking(listwise, keep_incomplete=keep_incomplete, dataset=dataset)


def _pairs_with_labels(frame: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
    if LABEL not in frame.columns:
        raise DataValidationError(
            f"dataset {dataset!r}: pairs without a label column cannot be grouped into ranked lists; columns "
            f"{list(frame.columns)}, expected {PAIR_COLUMNS}."
        )
    return frame
