"""Input checks shared by the losses.

A loss is the first code that sees a batch's columns, so it is where a mislabelled dataset should fail: every error
names the loss, the column (by position and role) and the row at fault, before any forward pass runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from rerank_lib.errors import DataValidationError


def check_column_count(loss_name: str, inputs: Sequence[Any], roles: str, minimum: int, maximum: int | None) -> None:
    """Fail unless ``minimum <= len(inputs) <= maximum``; ``roles`` describes the expected layout."""
    if isinstance(inputs, (str, torch.Tensor)) or not isinstance(inputs, Sequence):
        raise DataValidationError(f"{loss_name} expects a list of columns {roles}; got {type(inputs).__name__}.")
    count = len(inputs)
    if count < minimum or (maximum is not None and count > maximum):
        raise DataValidationError(f"{loss_name} expects the columns {roles}; got {count} text column(s).")


def _column_values(loss_name: str, column: Any, index: int, role: str) -> list[Any]:
    if isinstance(column, str) or not isinstance(column, Sequence):
        raise DataValidationError(
            f"{loss_name}: column {index} ({role}) must hold one value per row; got {type(column).__name__}."
        )
    if len(column) == 0:
        raise DataValidationError(f"{loss_name}: column {index} ({role}) is empty; a batch needs at least one row.")
    return list(column)


def text_column(loss_name: str, inputs: Sequence[Any], index: int, role: str) -> list[str]:
    """Column ``index`` as a list of strings; a list where a text should be is the usual wrong-loss mistake."""
    values = _column_values(loss_name, inputs[index], index, role)
    for row, value in enumerate(values):
        if not isinstance(value, str):
            hint = " (a list column belongs to a listwise loss)" if isinstance(value, (list, tuple)) else ""
            raise DataValidationError(
                f"{loss_name}: column {index} ({role}), row {row}: expected a text, "
                f"got {type(value).__name__}{hint}: {value!r:.80}"
            )
    return values


def list_column(loss_name: str, inputs: Sequence[Any], index: int, role: str) -> list[list[str]]:
    """Column ``index`` as a list of non-empty lists of strings (one list of documents per row)."""
    values = _column_values(loss_name, inputs[index], index, role)
    for row, value in enumerate(values):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise DataValidationError(
                f"{loss_name}: column {index} ({role}), row {row}: expected a list of texts, "
                f"got {type(value).__name__}: {value!r:.80}"
            )
        if len(value) == 0:
            raise DataValidationError(f"{loss_name}: column {index} ({role}), row {row} is an empty list.")
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise DataValidationError(
                    f"{loss_name}: column {index} ({role}), row {row}, item {position}: expected a text, "
                    f"got {type(item).__name__}: {item!r:.80}"
                )
    return [list(value) for value in values]


def check_same_length(loss_name: str, columns: Sequence[Sequence[Any]]) -> int:
    """All columns must have the same number of rows; returns it."""
    lengths = [len(column) for column in columns]
    if len(set(lengths)) > 1:
        raise DataValidationError(f"{loss_name}: the text columns have different numbers of rows: {lengths}.")
    return lengths[0]


def no_labels(loss_name: str, labels: Any) -> None:
    """Losses that build their own targets refuse a label column rather than silently ignore it."""
    if labels is not None:
        raise DataValidationError(
            f"{loss_name} takes no labels (the positive is column 1); remove the label column from the dataset."
        )


def label_vector(loss_name: str, labels: Any, rows: int) -> torch.Tensor:
    """Labels as a 1-D float tensor of ``rows`` finite numbers (one per row)."""
    if labels is None:
        raise DataValidationError(f"{loss_name} needs a label column (label, labels, score or scores).")
    if isinstance(labels, (list, tuple)) and any(isinstance(v, (torch.Tensor, list, tuple)) for v in labels):
        raise DataValidationError(f"{loss_name} expects one number per row as the label; got a list per row.")
    tensor = torch.as_tensor(labels)
    if tensor.dim() != 1:
        raise DataValidationError(
            f"{loss_name} expects labels of shape ({rows},), one number per row; got shape {tuple(tensor.shape)}."
        )
    if tensor.shape[0] != rows:
        raise DataValidationError(f"{loss_name}: {rows} rows but {tensor.shape[0]} labels.")
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        row = int((~torch.isfinite(tensor)).nonzero()[0])
        raise DataValidationError(f"{loss_name}: label at row {row} is not a finite number ({float(tensor[row])}).")
    return tensor


def label_matrix(loss_name: str, labels: Any, rows: int, widths: Sequence[int], what: str) -> torch.Tensor:
    """Labels as a (rows, width) float tensor, where ``widths`` lists the accepted widths (e.g. n or n + 1)."""
    if labels is None:
        raise DataValidationError(f"{loss_name} needs a label column ({what}).")
    if isinstance(labels, (list, tuple)):
        if len(labels) != rows:
            raise DataValidationError(f"{loss_name}: {rows} rows but {len(labels)} labels.")
        rows_as_tensors = [torch.as_tensor(value, dtype=torch.float).reshape(-1) for value in labels]
        row_widths = {len(value) for value in rows_as_tensors}
        if len(row_widths) > 1:
            raise DataValidationError(
                f"{loss_name}: every row needs the same number of labels ({what}); got lengths {sorted(row_widths)}."
            )
        tensor = torch.stack(rows_as_tensors)
    else:
        tensor = torch.as_tensor(labels).float()
        if tensor.dim() == 1:
            tensor = tensor.unsqueeze(1)
    if tensor.dim() != 2 or tensor.shape[0] != rows or tensor.shape[1] not in widths:
        expected = " or ".join(f"({rows}, {width})" for width in widths)
        raise DataValidationError(
            f"{loss_name} expects labels of shape {expected} ({what}); got shape {tuple(tensor.shape)}."
        )
    if not torch.isfinite(tensor).all():
        row = int((~torch.isfinite(tensor)).nonzero()[0, 0])
        raise DataValidationError(f"{loss_name}: labels at row {row} contain a non-finite number.")
    return tensor


def grade_lists(loss_name: str, labels: Any, docs: Sequence[Sequence[str]]) -> list[torch.Tensor]:
    """One 1-D float tensor of grades per row, as long as that row's document list."""
    if labels is None:
        raise DataValidationError(f"{loss_name} needs a label column with one list of grades per row.")
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 2:
            raise DataValidationError(
                f"{loss_name} expects a list of grades per row (one per document); "
                f"got a tensor of shape {tuple(labels.shape)}."
            )
        labels = list(labels)
    if len(labels) != len(docs):
        raise DataValidationError(f"{loss_name}: {len(docs)} rows but {len(labels)} label lists.")
    grades = []
    for row, (value, row_docs) in enumerate(zip(labels, docs, strict=True)):
        if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.dim() == 0):
            raise DataValidationError(
                f"{loss_name}: label at row {row} is a single number; expected a list with one grade per document."
            )
        tensor = torch.as_tensor(value, dtype=torch.float)
        if tensor.dim() != 1 or tensor.shape[0] != len(row_docs):
            raise DataValidationError(
                f"{loss_name}: row {row} has {len(row_docs)} documents but labels of shape {tuple(tensor.shape)}."
            )
        if torch.isnan(tensor).any() or (tensor == math.inf).any():
            raise DataValidationError(f"{loss_name}: labels at row {row} contain NaN or +inf: {tensor.tolist()}.")
        grades.append(tensor)
    return grades
