"""Read local csv/tsv/jsonl/parquet files (or globs) into one table, with the reader options that real releases need.

Public releases break naive readers in small ways (stray quotes, extra trailing fields, files that must be read with
quoting off), so each quirk is an explicit option and every error names the dataset, the file and the line.
Delimited files are read as text (no type guessing, empty cells stay empty strings); numbers are parsed later by
the code that knows which column is a label.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from rerank_lib.errors import DataValidationError

FileFormat = Literal["csv", "tsv", "jsonl", "parquet"]
_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
_QUOTING = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE}


@dataclass(frozen=True)
class TableOptions:
    """How to read a delimited or JSON-lines file.

    Attributes:
        format: file format; ``None`` infers it from the suffix (``.txt`` counts as tab-separated).
        sep: field separator of csv/tsv files; ``None``: ``,`` for csv, tab for tsv.
        header: whether the first line of a csv/tsv file names the columns.
        names: column names to use (required when ``header`` is False).
        quoting: ``"minimal"`` honours double quotes; ``"none"`` treats them as ordinary characters.
        extra_fields: ``"error"`` rejects lines with more fields than columns; ``"drop"`` keeps the first fields.
        encoding: text encoding.
    """

    format: FileFormat | None = None
    sep: str | None = None
    header: bool = True
    names: tuple[str, ...] | None = None
    quoting: Literal["minimal", "none"] = "minimal"
    extra_fields: Literal["error", "drop"] = "error"
    encoding: str = "utf-8"


def where(dataset: str | None, path: Path | str | None = None) -> str:
    """``dataset 'x' (file)``: the prefix of every data error, so users know which catalog entry failed."""
    parts = [f"dataset {dataset!r}" if dataset else "", f"({path})" if path else ""]
    return " ".join(part for part in parts if part) or "data"


def resolve_files(pattern: str | os.PathLike, root: Path | None = None, dataset: str | None = None) -> list[Path]:
    """The files a path or glob names, sorted; an error naming the dataset when there are none."""
    text = str(pattern)
    if root is not None and not os.path.isabs(text):
        text = str(root / text)
    if glob.has_magic(text):
        files = sorted(Path(match) for match in glob.glob(text, recursive=True) if Path(match).is_file())
        if not files:
            raise DataValidationError(f"{where(dataset)}: no file matches {text}; run `dvc pull` to fetch raw data.")
        return files
    path = Path(text)
    if not path.is_file():
        raise DataValidationError(f"{where(dataset)}: file {path} does not exist; run `dvc pull` to fetch raw data.")
    return [path]


def infer_format(path: Path, options: TableOptions, dataset: str | None = None) -> FileFormat:
    if options.format is not None:
        return options.format
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = _SUFFIXES.get(suffixes[-1].lower()) if suffixes else None
    if fmt is None:
        raise DataValidationError(f"{where(dataset, path)}: cannot tell the file format from its name; set `format`.")
    return fmt


def read_table(
    pattern: str | os.PathLike,
    options: TableOptions | None = None,
    *,
    root: Path | None = None,
    dataset: str | None = None,
    expected_rows: int | None = None,
) -> pd.DataFrame:
    """Read every file a path or glob names and concatenate them in name order.

    ``frame.attrs`` records ``files`` (paths read) and ``extra_field_lines`` (lines cut by ``extra_fields="drop"``).
    ``expected_rows`` guards against a change of quoting silently merging or splitting rows.
    """
    options = options or TableOptions()
    files = resolve_files(pattern, root, dataset)
    frames, extra_lines = [], 0
    for path in files:
        frame, extra = _read_one(path, options, dataset)
        frames.append(frame)
        extra_lines += extra
    columns = [list(frame.columns) for frame in frames]
    if any(names != columns[0] for names in columns[1:]):
        raise DataValidationError(f"{where(dataset, pattern)}: the matched files have different columns: {columns}.")
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if expected_rows is not None and len(table) != expected_rows:
        raise DataValidationError(
            f"{where(dataset, pattern)}: read {len(table)} rows, expected {expected_rows}; check the quoting and "
            "extra_fields options (a wrong quoting setting merges or splits rows)."
        )
    table.attrs = {"files": [str(path) for path in files], "extra_field_lines": extra_lines}
    return table


def _read_one(path: Path, options: TableOptions, dataset: str | None) -> tuple[pd.DataFrame, int]:
    fmt = infer_format(path, options, dataset)
    if fmt == "parquet":
        return pd.read_parquet(path), 0
    if fmt == "jsonl":
        return _read_jsonl(path, options, dataset), 0
    return _read_delimited(path, fmt, options, dataset)


def _read_delimited(
    path: Path, fmt: FileFormat, options: TableOptions, dataset: str | None
) -> tuple[pd.DataFrame, int]:
    if not options.header and not options.names:
        raise DataValidationError(f"{where(dataset, path)}: a file without a header needs `names`.")
    sep = options.sep or ("\t" if fmt == "tsv" else ",")
    kwargs: dict[str, Any] = {
        "sep": sep,
        "quoting": _QUOTING[options.quoting],
        "dtype": str,
        "keep_default_na": False,
        "encoding": options.encoding,
        "header": 0 if options.header else None,
    }
    if options.names:
        kwargs["names"] = list(options.names)
    cut = [0]
    if options.extra_fields == "drop":
        width = len(options.names) if options.names else len(_first_line_fields(path, sep, options))

        def keep_first(fields: list[str]) -> list[str] | None:
            cut[0] += 1
            return fields[:width]

        kwargs.update(engine="python", on_bad_lines=keep_first)
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.ParserError as error:
        raise DataValidationError(
            f"{where(dataset, path)}: {str(error).strip()}. Set extra_fields: drop if trailing fields are "
            "expected, or check the quoting option."
        ) from error
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataValidationError(f"{where(dataset, path)}: cannot read the file ({error}).") from error
    return frame, cut[0]


def _first_line_fields(path: Path, sep: str, options: TableOptions) -> list[str]:
    with open(path, encoding=options.encoding) as handle:
        return handle.readline().rstrip("\r\n").split(sep)


def _read_jsonl(path: Path, options: TableOptions, dataset: str | None) -> pd.DataFrame:
    records = []
    opener: Any = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open
    with opener(path, "rt", encoding=options.encoding) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataValidationError(
                    f"{where(dataset, path)}, line {line_number}: invalid JSON ({error.msg})."
                ) from error
            if not isinstance(record, dict):
                raise DataValidationError(f"{where(dataset, path)}, line {line_number}: expected a JSON object.")
            records.append(record)
    return pd.DataFrame.from_records(records)


def select_columns(
    frame: pd.DataFrame, mapping: dict[str, str], dataset: str | None = None, source: Any = None
) -> pd.DataFrame:
    """Rename source columns to target roles (``{role: source_column}``), keeping only the mapped ones."""
    missing = [column for column in mapping.values() if column not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{where(dataset, source)}: missing column(s) {missing}; the file has {list(frame.columns)}."
        )
    out = pd.DataFrame({role: frame[column] for role, column in mapping.items()})
    out.attrs = dict(frame.attrs)
    return out


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA: a cell with no value (an empty string is a value, checked separately)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and value != value


def as_list(value: Any) -> list[Any] | None:
    """A list-like cell (list, tuple, numpy array as parquet returns them) as a list; anything else: None."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:
        return list(value.tolist())
    return None


def list_cells(values: Sequence[Any]) -> list[Any]:
    """Convert list-like cells to plain lists (parquet gives numpy arrays), leaving other cells as they are."""
    out = []
    for value in values:
        as_python = as_list(value)
        out.append(as_python if as_python is not None else value)
    return out
