"""Cell-level checks shared by conversions, validation and mining.

Each check fails with a :class:`DataValidationError` naming the dataset, the column and the (0-based) row, so a
broken table is reported where it is broken rather than as a shape error deep inside a loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import pandas as pd

from rerank_lib.data.tables import as_list, is_missing
from rerank_lib.errors import DataValidationError


def prefix(dataset: str | None) -> str:
    return f"dataset {dataset!r}" if dataset else "data"


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str, dataset: str | None = None) -> None:
    """Every column in ``columns`` must exist (``what`` says what needs them, e.g. "pairs")."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{prefix(dataset)}: {what} need column(s) {list(columns)}; missing {missing}, found {list(frame.columns)}."
        )


def require_rows(frame: pd.DataFrame, dataset: str | None = None) -> None:
    if len(frame) == 0:
        raise DataValidationError(f"{prefix(dataset)}: the dataset is empty (0 rows).")


def require_filled_column(frame: pd.DataFrame, column: str, dataset: str | None = None) -> None:
    """A column whose every cell is missing or empty is a mapping mistake, reported as such."""
    values = frame[column].tolist()
    if values and all(is_missing(value) or (isinstance(value, str) and not value.strip()) for value in values):
        raise DataValidationError(f"{prefix(dataset)}: column {column!r} is empty (no row has a value).")


def text_values(frame: pd.DataFrame, column: str, dataset: str | None = None) -> list[str]:
    """The column as non-empty strings; a missing, empty or non-text cell is an error naming its row."""
    require_filled_column(frame, column, dataset)
    values = frame[column].tolist()
    for row, value in enumerate(values):
        if is_missing(value):
            raise DataValidationError(f"{prefix(dataset)}: column {column!r}, row {row}: missing text.")
        if not isinstance(value, str):
            hint = " (a list column belongs to the listwise format)" if as_list(value) is not None else ""
            raise DataValidationError(
                f"{prefix(dataset)}: column {column!r}, row {row}: expected a text, got {type(value).__name__}{hint}."
            )
        if not value.strip():
            raise DataValidationError(f"{prefix(dataset)}: column {column!r}, row {row}: empty text.")
    return values


def number(value: Any, column: str, row: int, dataset: str | None, item: int | None = None) -> float:
    """One finite number; strings such as ``"0.5"`` are accepted (delimited files are read as text)."""
    problem = number_problem(value)
    if problem is not None:
        at = f"column {column!r}, row {row}" + (f", item {item}" if item is not None else "")
        raise DataValidationError(f"{prefix(dataset)}: {at}: {problem}.")
    return float(value)


def number_problem(value: Any) -> str | None:
    """Why ``value`` is not a finite number (missing, not numeric, NaN or infinite), or None when it is one."""
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return "missing label"
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        return f"label {value!r:.60} is not a number"
    if not math.isfinite(result):
        return f"label {value!r:.60} is not a finite number"
    return None


def text_problem(value: Any, lists_allowed: bool = True) -> str | None:
    """Why a cell is not a usable text (missing, blank, not a string), or None.

    A list cell (listwise documents, reranking candidates) must hold texts only, each usable on its own; with
    ``lists_allowed`` off (a query, a pair's document) a list is itself the problem.
    """
    items = as_list(value)
    if items is not None:
        if not lists_allowed:
            return "expected a text, got a list"
        for index, item in enumerate(items):
            if (problem := text_problem(item, lists_allowed=False)) is not None:
                return f"list item {index}: {problem}"
        return None
    if is_missing(value):
        return "missing text"
    if not isinstance(value, str):
        return f"expected a text, got {type(value).__name__}"
    return None if value.strip() else "empty text"


def label_problem(value: Any, mapping: Mapping[str, float] | None = None) -> str | None:
    """Why a cell is not a usable label: not a finite number, or not a key of ``mapping`` (``labels.map``) if given."""
    if as_list(value) is not None:
        return None
    if mapping is None:
        return number_problem(value)
    return None if str(value) in mapping else f"label {value!r:.60} is not in labels.map"


def row_problems(
    frame: pd.DataFrame,
    text_columns: Sequence[str] = (),
    label_column: str | None = None,
    label_map: Mapping[str, float] | None = None,
    single_text_columns: Sequence[str] = (),
) -> dict[int, str]:
    """``{row position: reason}`` for rows with an unusable text or label cell (the first such cell names the reason).

    ``single_text_columns`` (among ``text_columns``) must hold one text per cell, never a list.

    Unlike the checks above, this does not stop at the first bad row: a source file's malformed rows are counted and
    reported together, or dropped, before any conversion.
    """
    checks: list[tuple[str, Callable[[Any], str | None]]] = [
        (column, partial(text_problem, lists_allowed=column not in single_text_columns))
        for column in text_columns
        if column in frame.columns
    ]
    if label_column is not None and label_column in frame.columns:
        checks.append((label_column, lambda value: label_problem(value, label_map)))
    problems: dict[int, str] = {}
    for column, check in checks:
        for row, value in enumerate(frame[column].tolist()):
            if row not in problems and (problem := check(value)) is not None:
                problems[row] = f"column {column!r}: {problem}"
    return dict(sorted(problems.items()))


def label_values(frame: pd.DataFrame, column: str, dataset: str | None = None) -> list[float]:
    """One finite number per row."""
    require_filled_column(frame, column, dataset)
    return [number(value, column, row, dataset) for row, value in enumerate(frame[column].tolist())]


def list_values(
    frame: pd.DataFrame, column: str, dataset: str | None = None, allow_empty: bool = False
) -> list[list[str]]:
    """One list of non-empty texts per row; an empty list only with ``allow_empty``."""
    out = []
    for row, value in enumerate(frame[column].tolist()):
        items = as_list(value)
        if items is None:
            raise DataValidationError(
                f"{prefix(dataset)}: column {column!r}, row {row}: expected a list of texts, got "
                f"{type(value).__name__}: {value!r:.60}"
            )
        if not items and not allow_empty:
            raise DataValidationError(f"{prefix(dataset)}: column {column!r}, row {row}: empty list.")
        for item_index, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise DataValidationError(
                    f"{prefix(dataset)}: column {column!r}, row {row}, item {item_index}: expected a non-empty "
                    f"text, got {item!r:.60}."
                )
        out.append(items)
    return out


def label_lists(
    frame: pd.DataFrame, column: str, lengths: Sequence[int] | None = None, dataset: str | None = None
) -> list[list[float]]:
    """One list of finite numbers per row, as long as that row's document list (``lengths``) when given."""
    out = []
    values = frame[column].tolist()
    for row, value in enumerate(values):
        items = as_list(value)
        if items is None:
            raise DataValidationError(
                f"{prefix(dataset)}: column {column!r}, row {row}: expected a list of labels (one per document), "
                f"got {type(value).__name__}: {value!r:.60}"
            )
        if lengths is not None and len(items) != lengths[row]:
            raise DataValidationError(
                f"{prefix(dataset)}: column {column!r}, row {row}: {len(items)} labels for {lengths[row]} documents."
            )
        out.append([number(item, column, row, dataset, index) for index, item in enumerate(items)])
    return out


def check_range(values: Sequence[float], low: float, high: float, column: str, dataset: str | None = None) -> None:
    """Every value within ``[low, high]``; the first one outside is an error naming its row."""
    for row, value in enumerate(values):
        if not low <= value <= high:
            raise DataValidationError(
                f"{prefix(dataset)}: column {column!r}, row {row}: label {value} is outside [{low}, {high}]."
            )
