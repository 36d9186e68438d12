"""Training and evaluation table formats, and lossless conversions between them.

The losses read text columns by position and the label from a column named ``label``/``labels``/``score``/``scores``,
so each format fixes its column names and order:

| format      | columns                                             | rows                              |
|-------------|-----------------------------------------------------|-----------------------------------|
| pairs       | query, document, label                              | one labelled pair                 |
| triplets    | query, positive, negative                           | one negative per row              |
| n-tuples    | query, positive, negative_1, ..., negative_n        | n negatives per row               |
| listwise    | query, documents [list], labels [list of grades]    | one query with its graded list    |
| reranking   | query, positive [list], negative [list]             | one evaluation sample per query   |

Conversions keep every row they can represent in the target format and report what they drop in ``frame.attrs``.
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from rerank_lib.data.checks import (
    check_range,
    label_lists,
    label_values,
    list_values,
    prefix,
    require_columns,
    text_values,
)
from rerank_lib.columns import (
    DOCUMENT,
    DOCUMENTS,
    LABEL,
    LABELS,
    LISTWISE_COLUMNS,
    NEGATIVE,
    PAIR_COLUMNS,
    POSITIVE,
    QUERY,
    RERANKING_COLUMNS,
    TRIPLET_COLUMNS,
    ntuple_columns,
)
from rerank_lib.data.tables import is_missing
from rerank_lib.errors import DataValidationError



class Format(StrEnum):
    PAIRS = "pairs"
    TRIPLETS = "triplets"
    NTUPLES = "n-tuples"
    LISTWISE = "listwise"
    RERANKING = "reranking"


def negative_columns(frame: pd.DataFrame) -> list[str]:
    """``negative_1 .. negative_n`` of an n-tuple table, in numeric order; gaps are an error."""
    numbers = sorted(
        int(column.split("_", 1)[1])
        for column in frame.columns
        if column.startswith(f"{NEGATIVE}_") and column.split("_", 1)[1].isdigit()
    )
    if numbers != list(range(1, len(numbers) + 1)):
        raise DataValidationError(f"n-tuples need columns negative_1..negative_n without gaps; got {numbers}.")
    return [f"{NEGATIVE}_{i}" for i in numbers]


# ----- pairs <-> listwise -----


def pairs_to_listwise(frame: pd.DataFrame, group_by: str = QUERY, dataset: str | None = None) -> pd.DataFrame:
    """Group labelled pairs into one row per query: ``(query, [documents], [labels])``.

    Groups keep their first-appearance order and rows keep their order within a group. ``group_by`` may name an
    id column (e.g. ``query_id``); its rows must then share one query text.
    """
    require_columns(frame, [*PAIR_COLUMNS, group_by], "pairs", dataset)
    queries = text_values(frame, QUERY, dataset)
    documents = text_values(frame, DOCUMENT, dataset)
    labels = label_values(frame, LABEL, dataset)
    keys = queries if group_by == QUERY else _keys(frame, group_by, dataset)
    groups: dict[str, tuple[str, list[str], list[float]]] = {}
    for row, (key, query, document, grade) in enumerate(zip(keys, queries, documents, labels, strict=True)):
        group = groups.setdefault(key, (query, [], []))
        if group[0] != query:
            raise DataValidationError(
                f"{prefix(dataset)}: column {group_by!r}, row {row}: {key!r} has two query texts: "
                f"{group[0]!r:.60} and {query!r:.60}."
            )
        group[1].append(document)
        group[2].append(grade)
    return pd.DataFrame(
        {
            QUERY: [group[0] for group in groups.values()],
            DOCUMENTS: [group[1] for group in groups.values()],
            LABELS: [group[2] for group in groups.values()],
        },
        columns=LISTWISE_COLUMNS,
    )


def _keys(frame: pd.DataFrame, column: str, dataset: str | None) -> list[str]:
    keys = []
    for row, value in enumerate(frame[column].tolist()):
        if is_missing(value) or str(value) == "":
            raise DataValidationError(f"{prefix(dataset)}: column {column!r}, row {row}: missing group key.")
        keys.append(str(value))
    return keys


def listwise_to_pairs(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Expand each ``(query, [documents], [labels])`` row into one labelled pair per document, in list order."""
    require_columns(frame, LISTWISE_COLUMNS, "listwise rows", dataset)
    queries = text_values(frame, QUERY, dataset)
    documents = list_values(frame, DOCUMENTS, dataset)
    labels = label_lists(frame, LABELS, [len(docs) for docs in documents], dataset)
    rows = [
        (query, document, grade)
        for query, docs, grades in zip(queries, documents, labels, strict=True)
        for document, grade in zip(docs, grades, strict=True)
    ]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS).astype({LABEL: float})


# ----- graded -> binary -----


def graded_to_binary(
    frame: pd.DataFrame, threshold: float, column: str | None = None, dataset: str | None = None
) -> pd.DataFrame:
    """Labels ``>= threshold`` become 1.0, others 0.0; works on a label column or on listwise label lists."""
    column = column or (LABELS if LABELS in frame.columns and LABEL not in frame.columns else LABEL)
    require_columns(frame, [column], "graded labels", dataset)
    out = frame.copy()
    if column == LABELS:
        lengths = [len(docs) for docs in list_values(out, DOCUMENTS, dataset)] if DOCUMENTS in out else None
        lists = label_lists(out, column, lengths, dataset)
        out[column] = [[1.0 if grade >= threshold else 0.0 for grade in grades] for grades in lists]
    else:
        out[column] = [1.0 if grade >= threshold else 0.0 for grade in label_values(out, column, dataset)]
    return out


def scale_labels(
    frame: pd.DataFrame, low: float, high: float, column: str = LABEL, dataset: str | None = None
) -> pd.DataFrame:
    """Map labels from ``[low, high]`` onto ``[0, 1]`` (e.g. STS 0-5, SICK 1-5); a value outside is an error."""
    if not high > low:
        raise ValueError(f"scale_labels needs low < high; got [{low}, {high}].")
    out = frame.copy()
    values = label_values(out, column, dataset)
    check_range(values, low, high, column, dataset)
    out[column] = [(value - low) / (high - low) for value in values]
    return out


# ----- listwise <-> reranking samples -----


def _binary(value: float, column: str, row: int, dataset: str | None) -> bool:
    if value not in (0.0, 1.0):
        raise DataValidationError(
            f"{prefix(dataset)}: column {column!r}, row {row}: label {value} is not 0 or 1; convert graded labels "
            "with a binary threshold first."
        )
    return value == 1.0


def listwise_to_reranking(
    frame: pd.DataFrame, keep_incomplete: bool = False, dataset: str | None = None
) -> pd.DataFrame:
    """``(query, [documents], [0/1 labels])`` into evaluation samples ``(query, [positive], [negative])``.

    A query without a positive or without a negative cannot be scored by ranking metrics; it is dropped unless
    ``keep_incomplete`` (``attrs["dropped_queries"]`` counts them).
    """
    require_columns(frame, LISTWISE_COLUMNS, "listwise rows", dataset)
    queries = text_values(frame, QUERY, dataset)
    documents = list_values(frame, DOCUMENTS, dataset)
    labels = label_lists(frame, LABELS, [len(docs) for docs in documents], dataset)
    rows, dropped = [], 0
    for row, (query, docs, grades) in enumerate(zip(queries, documents, labels, strict=True)):
        flags = [_binary(grade, LABELS, row, dataset) for grade in grades]
        positives = [doc for doc, flag in zip(docs, flags, strict=True) if flag]
        negatives = [doc for doc, flag in zip(docs, flags, strict=True) if not flag]
        if (positives and negatives) or keep_incomplete:
            rows.append((query, positives, negatives))
        else:
            dropped += 1
    out = pd.DataFrame(rows, columns=RERANKING_COLUMNS)
    out.attrs["dropped_queries"] = dropped
    return out


def reranking_to_listwise(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Evaluation samples back into listwise rows: positives (label 1) first, then negatives (label 0)."""
    require_columns(frame, RERANKING_COLUMNS, "reranking samples", dataset)
    queries = text_values(frame, QUERY, dataset)
    positives = list_values(frame, POSITIVE, dataset, allow_empty=True)
    negatives = list_values(frame, NEGATIVE, dataset, allow_empty=True)
    rows = []
    for row, (query, pos, neg) in enumerate(zip(queries, positives, negatives, strict=True)):
        if not pos and not neg:
            raise DataValidationError(f"{prefix(dataset)}: row {row}: query {query!r:.60} has no documents.")
        rows.append((query, pos + neg, [1.0] * len(pos) + [0.0] * len(neg)))
    return pd.DataFrame(rows, columns=LISTWISE_COLUMNS)


# ----- pairs / triplets / n-tuples -----


def pairs_to_triplets(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Every (positive, negative) combination of each query's 0/1-labelled pairs, in pair order."""
    listwise = pairs_to_listwise(frame, dataset=dataset)
    rows = []
    for row, (query, docs, grades) in enumerate(listwise.itertuples(index=False)):
        flags = [_binary(grade, LABEL, row, dataset) for grade in grades]
        positives = [doc for doc, flag in zip(docs, flags, strict=True) if flag]
        negatives = [doc for doc, flag in zip(docs, flags, strict=True) if not flag]
        rows.extend((query, positive, negative) for positive in positives for negative in negatives)
    return pd.DataFrame(rows, columns=TRIPLET_COLUMNS)


def triplets_to_pairs(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """``(query, positive, 1)`` and ``(query, negative, 0)`` for each triplet, each distinct pair once."""
    require_columns(frame, TRIPLET_COLUMNS, "triplets", dataset)
    queries, positives, negatives = (text_values(frame, column, dataset) for column in TRIPLET_COLUMNS)
    seen: dict[tuple[str, str], float] = {}
    for row, (query, positive, negative) in enumerate(zip(queries, positives, negatives, strict=True)):
        for document, grade in ((positive, 1.0), (negative, 0.0)):
            previous = seen.setdefault((query, document), grade)
            if previous != grade:
                raise DataValidationError(
                    f"{prefix(dataset)}: row {row}: {document!r:.60} is both a positive and a negative of "
                    f"query {query!r:.60}."
                )
    return pd.DataFrame([(q, d, g) for (q, d), g in seen.items()], columns=PAIR_COLUMNS)


def ntuples_to_triplets(frame: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """One ``(query, positive, negative_i)`` row per negative column, row by row."""
    columns = negative_columns(frame)
    require_columns(frame, [QUERY, POSITIVE, *columns], "n-tuples", dataset)
    if not columns:
        raise DataValidationError(f"{prefix(dataset)}: n-tuples need at least a negative_1 column.")
    queries, positives = text_values(frame, QUERY, dataset), text_values(frame, POSITIVE, dataset)
    negatives = [text_values(frame, column, dataset) for column in columns]
    rows = [
        (queries[row], positives[row], negatives[index][row])
        for row in range(len(frame))
        for index in range(len(columns))
    ]
    return pd.DataFrame(rows, columns=TRIPLET_COLUMNS)


def triplets_to_ntuples(frame: pd.DataFrame, num_negatives: int, dataset: str | None = None) -> pd.DataFrame:
    """Group triplets by ``(query, positive)`` and cut each group's negatives into rows of ``num_negatives``.

    A group's last, incomplete chunk is dropped (``attrs["dropped_negatives"]`` counts the negatives lost).
    """
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be at least 1; got {num_negatives}.")
    require_columns(frame, TRIPLET_COLUMNS, "triplets", dataset)
    queries, positives, negatives = (text_values(frame, column, dataset) for column in TRIPLET_COLUMNS)
    groups: dict[tuple[str, str], list[str]] = {}
    for query, positive, negative in zip(queries, positives, negatives, strict=True):
        groups.setdefault((query, positive), []).append(negative)
    rows, dropped = [], 0
    for (query, positive), group in groups.items():
        full = len(group) - len(group) % num_negatives
        dropped += len(group) - full
        rows.extend((query, positive, *group[start : start + num_negatives]) for start in range(0, full, num_negatives))
    out = pd.DataFrame(rows, columns=ntuple_columns(num_negatives))
    out.attrs["dropped_negatives"] = dropped
    return out


def detect_format(frame: pd.DataFrame) -> Format:
    """The format a table's columns describe (list-valued positive/negative means reranking samples)."""
    columns = set(frame.columns)
    if {QUERY, DOCUMENTS, LABELS} <= columns:
        return Format.LISTWISE
    if {QUERY, POSITIVE} <= columns and any(c.startswith(f"{NEGATIVE}_") for c in columns):
        return Format.NTUPLES
    if {QUERY, POSITIVE, NEGATIVE} <= columns:
        first = frame[POSITIVE].iloc[0] if len(frame) else ""
        return Format.TRIPLETS if isinstance(first, str) else Format.RERANKING
    if {QUERY, DOCUMENT} <= columns:
        return Format.PAIRS
    raise DataValidationError(f"Cannot tell the format of a table with columns {list(frame.columns)}.")
