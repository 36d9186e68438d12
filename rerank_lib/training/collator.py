"""Batches rows of text columns for the loss, keeping the columns as lists in column order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rerank_lib.columns import DATASET_NAME_KEY, LABEL_COLUMNS
from rerank_lib.errors import DataValidationError


@dataclass
class CrossEncoderDataCollator:
    """Turns a list of rows into ``{column: [values...], "label": tensor}``.

    Column names do not matter, their order does: the loss receives the text columns positionally.
    The label is the first of ``label``, ``labels``, ``score``, ``scores`` present in the row.
    """

    valid_label_columns: Sequence[str] = field(default_factory=lambda: list(LABEL_COLUMNS))

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            raise DataValidationError("Cannot collate an empty batch.")
        columns = list(features[0].keys())
        label_column = next((c for c in self.valid_label_columns if c in columns), None)
        batch: dict[str, Any] = {}
        if DATASET_NAME_KEY in columns:
            batch[DATASET_NAME_KEY] = features[0][DATASET_NAME_KEY]
        for column in columns:
            if column == DATASET_NAME_KEY or column == label_column:
                continue
            values = [row[column] for row in features]
            for row_index, value in enumerate(values):
                if not isinstance(value, (str, list)):
                    raise DataValidationError(
                        f"Column {column!r}, row {row_index} of the batch: expected text or a list of texts, "
                        f"got {type(value).__name__} ({value!r})."
                    )
            batch[column] = values
        if label_column is not None:
            batch["label"] = self._label_tensor(label_column, [row[label_column] for row in features])
        return batch

    @staticmethod
    def _label_tensor(column: str, labels: list[Any]) -> torch.Tensor | list[torch.Tensor]:
        for row_index, value in enumerate(labels):
            if isinstance(value, str) or value is None:
                raise DataValidationError(
                    f"Label column {column!r}, row {row_index} of the batch: expected a number, got {value!r}."
                )
        listwise = isinstance(labels[0], (list, tuple))
        for row_index, value in enumerate(labels):
            if isinstance(value, (list, tuple)) != listwise:
                expected = "a list of numbers, like row 0" if listwise else "one number, like row 0"
                raise DataValidationError(
                    f"Label column {column!r}, row {row_index} of the batch: expected {expected}, got {value!r:.80}."
                )
        if listwise:  # listwise data: one list of grades per row; rows may hold different numbers of documents
            try:
                return [torch.tensor(value, dtype=torch.float) for value in labels]
            except (TypeError, ValueError) as error:
                raise DataValidationError(
                    f"Label column {column!r}: a label list is not all numbers ({error})."
                ) from error
        return torch.tensor(labels)
