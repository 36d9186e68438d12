"""The CSV history never loses or splits rows when evaluations write at the same time."""

from __future__ import annotations

import csv
import multiprocessing
import threading
from pathlib import Path

from rerank_lib.evaluation.csv_log import append_csv_row

ROWS_PER_WRITER = 25


def _write_rows(folder: str, writer_id: int, extra_column: bool) -> None:
    for step in range(ROWS_PER_WRITER):
        row: dict[str, float | int | str] = {"epoch": writer_id, "steps": step, "ndcg@10": writer_id + step / 100}
        if extra_column:
            row["late_metric"] = step
        append_csv_row(folder, "results.csv", row)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_threads_writing_at_once_keep_every_row(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "eval"  # created on first write
    barrier = threading.Barrier(8)

    def worker(writer_id: int) -> None:
        barrier.wait()
        _write_rows(str(folder), writer_id, extra_column=writer_id == 7)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = _read(folder / "results.csv")
    assert len(rows) == 8 * ROWS_PER_WRITER
    assert {(row["epoch"], row["steps"]) for row in rows} == {
        (str(w), str(s)) for w in range(8) for s in range(ROWS_PER_WRITER)
    }
    assert list(rows[0]) == ["epoch", "steps", "ndcg@10", "late_metric"]  # widened once, never duplicated


def test_processes_writing_at_once_keep_every_row(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    processes = [context.Process(target=_write_rows, args=(str(tmp_path), i, False)) for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    rows = _read(tmp_path / "results.csv")
    assert len(rows) == 4 * ROWS_PER_WRITER
    assert len({(row["epoch"], row["steps"]) for row in rows}) == 4 * ROWS_PER_WRITER
    header_lines = [line for line in (tmp_path / "results.csv").read_text().splitlines() if line.startswith("epoch")]
    assert len(header_lines) == 1


def test_new_columns_widen_the_header_without_losing_rows(tmp_path: Path) -> None:
    append_csv_row(tmp_path, "r.csv", {"epoch": 0, "steps": 1, "map": 0.5})
    append_csv_row(tmp_path, "r.csv", {"epoch": 1, "steps": 2, "map": 0.6, "ndcg@10": 0.7})
    append_csv_row(tmp_path, "r.csv", {"epoch": 2, "steps": 3, "map": 0.8})
    rows = _read(tmp_path / "r.csv")
    assert rows == [
        {"epoch": "0", "steps": "1", "map": "0.5", "ndcg@10": ""},
        {"epoch": "1", "steps": "2", "map": "0.6", "ndcg@10": "0.7"},
        {"epoch": "2", "steps": "3", "map": "0.8", "ndcg@10": ""},
    ]
