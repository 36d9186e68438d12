"""Append one row of metrics per evaluation call, so a training run leaves a metrics history.

Evaluations may run at the same time (several trainer processes, a thread pool sharing an output folder), so every
append holds an exclusive file lock for the whole read-header/write-row sequence: no row is lost or interleaved, and
the header is written exactly once. If a later row brings new columns, the file is rewritten atomically with the
widened header (earlier rows get empty cells) instead of silently misaligning them.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

from filelock import FileLock

from rerank_lib.atomic import write_text_atomic

LOCK_TIMEOUT_S = 120.0


def append_csv_row(output_path: str | os.PathLike, file_name: str, row: Mapping[str, float | int | str]) -> str:
    """Append ``row`` to ``output_path/file_name`` under a lock, writing or widening the header as needed."""
    os.makedirs(output_path, exist_ok=True)
    path = os.path.join(os.fspath(output_path), file_name)
    with FileLock(path + ".lock", timeout=LOCK_TIMEOUT_S):
        header = _read_header(path)
        if header is None:
            _append_lines(path, [list(row.keys()), list(row.values())])
            return path
        new_columns = [key for key in row if key not in header]
        if new_columns:
            _rewrite_with_header(path, header + new_columns)
            header = header + new_columns
        _append_lines(path, [[row.get(column, "") for column in header]])
    return path


def _read_header(path: str) -> list[str] | None:
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), None)


def _append_lines(path: str, rows: list[list[object]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    with open(path, "a", newline="", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())


def _rewrite_with_header(path: str, header: list[str]) -> None:
    """Rewrite the file with a wider header (padding old rows), replacing it atomically."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [row + [""] * (len(header) - len(row)) for row in reader]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
