"""Reader for the STS Benchmark (``sts-{train,dev,test}.csv``), keeping the quirks of its public release.

The files are tab-separated without a header and without quoting (sentences contain bare double quotes), and a
few rows carry two extra trailing fields (the source of the news headlines); those fields are dropped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rerank_lib.data.checks import check_range, label_values, text_values
from rerank_lib.data.formats import scale_labels
from rerank_lib.data.tables import TableOptions, read_table

COLUMNS = ("genre", "file", "year", "id", "score", "sentence1", "sentence2")
ROWS = {"train": 5749, "dev": 1500, "test": 1379}
SCORE_RANGE = (0.0, 5.0)
OPTIONS = TableOptions(format="tsv", header=False, names=COLUMNS, quoting="none", extra_fields="drop")


def read_sts_benchmark(path: str | Path, expected_rows: int | None = None, normalize: bool = False) -> pd.DataFrame:
    """Pairs ``(sentence1, sentence2, score)``; scores 0-5, or mapped onto [0, 1] with ``normalize``.

    ``attrs["extra_field_lines"]`` counts the rows whose trailing fields were dropped.
    """
    path = Path(path)
    name = f"stsbenchmark/{path.name}"
    table = read_table(path, OPTIONS, dataset=name, expected_rows=expected_rows)
    scores = label_values(table, "score", name)
    check_range(scores, *SCORE_RANGE, "score", name)
    frame = pd.DataFrame(
        {
            "sentence1": text_values(table, "sentence1", name),
            "sentence2": text_values(table, "sentence2", name),
            "score": scores,
        }
    )
    if normalize:
        frame = scale_labels(frame, *SCORE_RANGE, column="score", dataset=name)
    frame.attrs = dict(table.attrs)
    return frame
