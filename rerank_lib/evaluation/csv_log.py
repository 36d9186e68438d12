"""Append one row of metrics per evaluation call, so a training run leaves a metrics history."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping


def append_csv_row(output_path: str, file_name: str, row: Mapping[str, float | int]) -> str:
    """Append ``row`` to ``output_path/file_name``, writing the header when the file is new."""
    os.makedirs(output_path, exist_ok=True)
    path = os.path.join(output_path, file_name)
    is_new = not os.path.isfile(path)
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if is_new:
            writer.writerow(list(row.keys()))
        writer.writerow(list(row.values()))
    return path
