"""Reader for SICK (``SICK.txt``): sentence pairs with a relatedness score (1-5) and an entailment label.

The release has a header, no quoting and no split column, so splits are made here, deterministically from a seed
and grouped by the first sentence (each sentence appears in several pairs; grouping keeps it out of two splits).
The file holds 9,927 pairs; its last line has no newline, so ``wc -l`` shows one line less.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from rerank_lib.data.checks import check_range, label_values, text_values
from rerank_lib.data.splits import split_frame
from rerank_lib.data.tables import TableOptions, read_table
from rerank_lib.errors import DataValidationError

ROWS = 9927
COLUMNS = ("pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment")
ENTAILMENT_LABELS = {"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2}
SCORE_RANGE = (1.0, 5.0)
OPTIONS = TableOptions(format="tsv", header=True, quoting="none")
DEFAULT_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def read_sick(path: str | Path, expected_rows: int | None = ROWS) -> pd.DataFrame:
    """``(pair_id, sentence1, sentence2, score, entailment)``; score 1-5, entailment a class id (ENTAILMENT_LABELS)."""
    path = Path(path)
    name = "sick"
    table = read_table(path, OPTIONS, dataset=name, expected_rows=expected_rows)
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise DataValidationError(f"dataset 'sick' ({path}): missing column(s) {missing}.")
    scores = label_values(table, "relatedness_score", name)
    check_range(scores, *SCORE_RANGE, "relatedness_score", name)
    classes = []
    for row, value in enumerate(table["entailment_judgment"].tolist()):
        if value not in ENTAILMENT_LABELS:
            raise DataValidationError(
                f"dataset 'sick' ({path}): column 'entailment_judgment', row {row}: unknown label {value!r}."
            )
        classes.append(ENTAILMENT_LABELS[value])
    frame = pd.DataFrame(
        {
            "pair_id": table["pair_ID"].tolist(),
            "sentence1": text_values(table, "sentence_A", name),
            "sentence2": text_values(table, "sentence_B", name),
            "score": scores,
            "entailment": classes,
        }
    )
    frame.attrs = dict(table.attrs)
    return frame


def split_sick(
    frame: pd.DataFrame, seed: int = 42, fractions: Mapping[str, float] | None = None
) -> dict[str, pd.DataFrame]:
    """A deterministic split of :func:`read_sick`'s pairs, grouped by ``sentence1``."""
    return split_frame(frame, fractions or DEFAULT_FRACTIONS, seed, group_by="sentence1", dataset="sick")
