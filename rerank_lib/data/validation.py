"""Check a training table against the loss that will read it, before any model is loaded or step is taken.

A mislabelled or misshaped dataset otherwise fails minutes into training, inside a loss, or worse trains quietly on
wrong targets. Errors (:class:`DataValidationError`) name the dataset, the column and the row. Problems that do not
stop training are counted and returned as warnings: duplicate rows, texts that will be truncated to
``max_length`` tokens, and queries without any positive (they teach nothing to ranking losses).

The losses read their text columns by position and the label from the first column named ``label``, ``labels``,
``score`` or ``scores`` (as the training collator does), so this module checks exactly that layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from rerank_lib.data.checks import (
    check_range,
    label_lists,
    label_values,
    list_values,
    prefix,
    require_rows,
    text_values,
)
from rerank_lib.data.tables import as_list
from rerank_lib.errors import DataValidationError
from rerank_lib.columns import DATASET_NAME_KEY, LABEL_COLUMNS

logger = logging.getLogger(__name__)

IGNORED_COLUMNS = (DATASET_NAME_KEY,)
LabelKind = Literal["none", "unit", "class", "float", "margins", "grades"]


@dataclass(frozen=True)
class LossInputs:
    """What a loss reads: ``texts`` text columns (``max_texts`` None: no upper bound), a list column for listwise
    losses, and the kind of label."""

    min_texts: int
    max_texts: int | None
    label: LabelKind
    listwise: bool = False
    description: str = ""


_PAIR_UNIT = LossInputs(2, 2, "unit", description="(query, document) + label in [0, 1]")
_LISTWISE = LossInputs(1, 1, "grades", listwise=True, description="(query, [documents]) + [grades]")
_MNRL = LossInputs(2, None, "none", description="(anchor, positive, negative_1..n), no label")
LOSS_INPUTS: dict[str, LossInputs] = {
    "BinaryCrossEntropyLoss": _PAIR_UNIT,
    "CrossEntropyLoss": LossInputs(2, 2, "class", description="(query, document) + class id < num_labels"),
    "MSELoss": LossInputs(2, 2, "float", description="(query, document) + target score"),
    "MarginMSELoss": LossInputs(3, None, "margins", description="(query, positive, negative_1..n) + margins"),
    "MultipleNegativesRankingLoss": _MNRL,
    "CachedMultipleNegativesRankingLoss": _MNRL,
    "LambdaLoss": _LISTWISE,
    "ListNetLoss": _LISTWISE,
    "ListMLELoss": _LISTWISE,
    "PListMLELoss": _LISTWISE,
    "RankNetLoss": _LISTWISE,
}


@dataclass
class ValidationReport:
    """Counts of the problems that do not stop training; ``warnings`` maps a problem to its count."""

    dataset: str
    rows: int
    warnings: dict[str, int] = field(default_factory=dict)

    def messages(self) -> list[str]:
        return [f"dataset {self.dataset!r}: {count} {problem}" for problem, count in self.warnings.items() if count]


def split_columns(frame: pd.DataFrame) -> tuple[list[str], str | None]:
    """The input columns in order, and the label column (the first of label/labels/score/scores present)."""
    label = next((column for column in LABEL_COLUMNS if column in frame.columns), None)
    inputs = [column for column in frame.columns if column != label and column not in IGNORED_COLUMNS]
    return inputs, label


def validate_for_loss(
    frame: pd.DataFrame,
    loss: str,
    *,
    dataset: str = "train",
    num_labels: int | None = None,
    max_length: int | None = None,
    tokenizer: Any = None,
    columns: Sequence[str] | None = None,
) -> ValidationReport:
    """Fail on anything ``loss`` cannot train on; return counts of what merely deserves a warning.

    Args:
        frame: the training table, columns in the order the loss reads them.
        loss: a loss class name from :data:`LOSS_INPUTS`.
        dataset: the name used in messages.
        num_labels: the model's outputs; required for CrossEntropyLoss (class ids must be below it).
        max_length: with ``tokenizer``, count (query, document) pairs longer than this many tokens.
        tokenizer: a transformers tokenizer (the model's), used only for the length count.
        columns: columns the table must have (e.g. the catalog's mapping), reported by name when missing.
    """
    spec = LOSS_INPUTS.get(loss)
    if spec is None:
        raise ValueError(f"Unknown loss {loss!r}; known: {sorted(LOSS_INPUTS)}.")
    if columns is not None:
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise DataValidationError(f"{prefix(dataset)}: missing column(s) {missing}; found {list(frame.columns)}.")
    require_rows(frame, dataset)
    inputs, label = split_columns(frame)
    _check_layout(loss, spec, inputs, label, dataset)
    queries = text_values(frame, inputs[0], dataset)
    if spec.listwise:
        documents = list_values(frame, inputs[1], dataset)
        texts = None
    else:
        texts = [text_values(frame, column, dataset) for column in inputs[1:]]
        documents = None
    labels = _check_labels(frame, loss, spec, label, len(inputs) - 2, documents, num_labels, dataset)

    report = ValidationReport(dataset=dataset, rows=len(frame))
    report.warnings["duplicate rows"] = _duplicates(frame)
    if tokenizer is not None and max_length is not None:
        pairs = _pairs(queries, texts, documents)
        report.warnings[f"(query, document) pairs longer than {max_length} tokens (truncated)"] = _too_long(
            tokenizer, pairs, max_length
        )
    if spec.label in ("unit", "grades"):  # class ids and regression targets have no "positive"
        report.warnings["queries without any positive"] = _queries_without_positive(queries, labels)
    for message in report.messages():
        logger.warning(message)
    return report


def _check_layout(loss: str, spec: LossInputs, inputs: list[str], label: str | None, dataset: str) -> None:
    if spec.label == "none" and label is not None:
        raise DataValidationError(
            f"{prefix(dataset)}: {loss} takes no labels, but the table has a {label!r} column; drop it."
        )
    if spec.label != "none" and label is None:
        raise DataValidationError(
            f"{prefix(dataset)}: {loss} needs a label column named one of {list(LABEL_COLUMNS)}; "
            f"found {inputs}. Expected {spec.description}."
        )
    texts = len(inputs) - (1 if spec.listwise else 0)
    too_many = spec.max_texts is not None and texts > spec.max_texts
    if texts < spec.min_texts or too_many or (spec.listwise and len(inputs) != 2):
        raise DataValidationError(
            f"{prefix(dataset)}: {loss} expects {spec.description}; the table has {len(inputs)} input column(s) "
            f"{inputs}" + (f" and label {label!r}" if label else "") + "."
        )


def _check_labels(
    frame: pd.DataFrame,
    loss: str,
    spec: LossInputs,
    label: str | None,
    num_negatives: int,
    documents: list[list[str]] | None,
    num_labels: int | None,
    dataset: str,
) -> list[Any] | None:
    if label is None:
        return None
    if spec.label == "grades":
        assert documents is not None
        return label_lists(frame, label, [len(docs) for docs in documents], dataset)
    if spec.label == "margins":
        return _margins(frame, label, num_negatives, dataset)
    values = label_values(frame, label, dataset)
    if spec.label == "unit":
        check_range(values, 0.0, 1.0, label, dataset)
    elif spec.label == "class":
        if num_labels is None or num_labels < 2:
            raise ValueError(f"{loss} validation needs num_labels >= 2 (the model's outputs); got {num_labels}.")
        for row, value in enumerate(values):
            if value != int(value) or not 0 <= value < num_labels:
                raise DataValidationError(
                    f"{prefix(dataset)}: column {label!r}, row {row}: {loss} needs a class id in "
                    f"[0, {num_labels}); got {value}."
                )
    return values


def _margins(frame: pd.DataFrame, label: str, num_negatives: int, dataset: str) -> list[Any]:
    """MarginMSE: n margins or n + 1 teacher scores per row (one number per row when n == 1)."""
    widths = (num_negatives, num_negatives + 1)
    out = []
    for row, value in enumerate(frame[label].tolist()):
        items = as_list(value)
        if items is None:
            if num_negatives != 1:
                raise DataValidationError(
                    f"{prefix(dataset)}: column {label!r}, row {row}: MarginMSELoss with {num_negatives} negatives "
                    f"needs a list of {widths[0]} margins or {widths[1]} teacher scores; got {value!r:.60}."
                )
            items = [value]
        if len(items) not in widths:
            raise DataValidationError(
                f"{prefix(dataset)}: column {label!r}, row {row}: {len(items)} labels; MarginMSELoss with "
                f"{num_negatives} negatives needs {widths[0]} margins or {widths[1]} teacher scores."
            )
        single = pd.DataFrame({label: [items]})
        out.append(label_lists(single, label, None, dataset)[0])
    return out


def _duplicates(frame: pd.DataFrame) -> int:
    hashable = frame.map(lambda value: tuple(items) if (items := as_list(value)) is not None else value)
    return int(hashable.duplicated().sum())


def _pairs(
    queries: list[str], texts: list[list[str]] | None, documents: list[list[str]] | None
) -> list[tuple[str, str]]:
    if documents is not None:
        return [(query, doc) for query, docs in zip(queries, documents, strict=True) for doc in docs]
    assert texts is not None
    return [(query, column[row]) for column in texts for row, query in enumerate(queries)]


def _too_long(tokenizer: Any, pairs: list[tuple[str, str]], max_length: int, batch_size: int = 2048) -> int:
    count = 0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        encoded = tokenizer([a for a, _ in batch], [b for _, b in batch], truncation=False, add_special_tokens=True)
        count += sum(len(ids) > max_length for ids in encoded["input_ids"])
    return count


def _queries_without_positive(queries: list[str], labels: list[Any] | None) -> int:
    if labels is None:
        return 0
    has_positive: dict[str, bool] = {}
    for query, value in zip(queries, labels, strict=True):
        positive = any(grade > 0 for grade in value) if isinstance(value, list) else value > 0
        has_positive[query] = has_positive.get(query, False) or positive
    return sum(not flag for flag in has_positive.values())
