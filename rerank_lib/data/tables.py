"""Read local csv/tsv/jsonl/parquet files (or globs) into one table, with the reader options that real releases need.

Public releases break naive readers in small ways (stray quotes, extra trailing fields, files that must be read with
quoting off), so each quirk is an explicit option and every error names the dataset, the file and the line.
Delimited files are read as text (no type guessing, empty cells stay empty strings); numbers are parsed later by
the code that knows which column is a label.

Every row keeps the file and line it came from, and malformed rows (a wrong field count, a line that is not a JSON
object) are collected rather than fatal at the first one, so a caller can report all of them, or drop them
(:func:`read_source`); :func:`read_table` keeps the strict behaviour and fails listing them.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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
BAD_ROWS_LISTED = 10  # how many malformed rows an error message or a log line spells out
FIELD_COUNT = re.compile(r"\d+ fields, expected \d+")  # the reason given for a line with a wrong field count


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


@dataclass(frozen=True)
class BadRow:
    """A malformed row of a source file: the file, its 1-based line (row, for parquet) and what is wrong with it."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.reason}"


@dataclass
class SourceTable:
    """A path or glob as read: the well-formed rows, the ``(file, line)`` each came from, and the malformed rows.

    ``origins`` lets later checks (missing text, a label that is not a number) name the line of a row too.
    """

    frame: pd.DataFrame
    origins: list[tuple[str, int]]
    bad_rows: list[BadRow] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    extra_field_lines: int = 0

    @property
    def rows_read(self) -> int:
        """Every data row in the files, well-formed or not (what ``expected_rows`` counts)."""
        return len(self.frame) + len(self.bad_rows)


def describe_bad_rows(bad_rows: Sequence[BadRow], dataset: str | None = None, limit: int = BAD_ROWS_LISTED) -> str:
    """``dataset 'x' (file): 3 malformed rows`` and the first ``limit`` of them, each with its line and reason."""
    files = list(dict.fromkeys(row.file for row in bad_rows))
    one_file = files[0] if len(files) == 1 else None
    if len(bad_rows) == 1:
        (row,) = bad_rows
        lines = [f"{where(dataset, row.file)}, line {row.line}: {row.reason}"]
    else:
        count = f"{len(bad_rows)} malformed rows" + ("" if one_file else f" in {len(files)} files")
        lines = [f"{where(dataset, one_file)}: {count}" + (f"; the first {limit}:" if len(bad_rows) > limit else ":")]
        lines += [f"  line {row.line}: {row.reason}" if one_file else f"  {row}" for row in bad_rows[:limit]]
    if any(FIELD_COUNT.fullmatch(row.reason) for row in bad_rows):
        lines.append("Set extra_fields: drop if trailing fields are expected, or check the quoting option.")
    return "\n".join(lines)


def read_table(
    pattern: str | os.PathLike,
    options: TableOptions | None = None,
    *,
    root: Path | None = None,
    dataset: str | None = None,
    expected_rows: int | None = None,
) -> pd.DataFrame:
    """Read every file a path or glob names and concatenate them in name order; any malformed row is an error.

    ``frame.attrs`` records ``files`` (paths read) and ``extra_field_lines`` (lines cut by ``extra_fields="drop"``).
    ``expected_rows`` guards against a change of quoting silently merging or splitting rows.
    """
    source = read_source(pattern, options, root=root, dataset=dataset, expected_rows=expected_rows)
    if source.bad_rows:
        raise DataValidationError(describe_bad_rows(source.bad_rows, dataset))
    return source.frame


def read_source(
    pattern: str | os.PathLike,
    options: TableOptions | None = None,
    *,
    root: Path | None = None,
    dataset: str | None = None,
    expected_rows: int | None = None,
) -> SourceTable:
    """Like :func:`read_table`, but malformed rows are set aside in ``bad_rows`` for the caller to report or drop."""
    options = options or TableOptions()
    files = resolve_files(pattern, root, dataset)
    parts = [_read_one(path, options, dataset) for path in files]
    columns = [list(part.frame.columns) for part in parts]
    if any(names != columns[0] for names in columns[1:]):
        raise DataValidationError(f"{where(dataset, pattern)}: the matched files have different columns: {columns}.")
    frame = pd.concat([part.frame for part in parts], ignore_index=True) if len(parts) > 1 else parts[0].frame
    source = SourceTable(
        frame,
        [origin for part in parts for origin in part.origins],
        [row for part in parts for row in part.bad_rows],
        [str(path) for path in files],
        sum(part.extra_field_lines for part in parts),
    )
    if expected_rows is not None and source.rows_read != expected_rows:
        raise DataValidationError(
            f"{where(dataset, pattern)}: read {source.rows_read} rows, expected {expected_rows}; check the quoting "
            "and extra_fields options (a wrong quoting setting merges or splits rows)."
        )
    frame.attrs = {"files": source.files, "extra_field_lines": source.extra_field_lines}
    return source


def _read_one(path: Path, options: TableOptions, dataset: str | None) -> SourceTable:
    fmt = infer_format(path, options, dataset)
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:  # pyarrow's errors for a truncated or foreign file derive from these
            raise DataValidationError(f"{where(dataset, path)}: cannot read the parquet file ({error}).") from error
        return SourceTable(frame, [(str(path), row) for row in range(1, len(frame) + 1)])
    if fmt == "jsonl":
        return _read_jsonl(path, options, dataset)
    return _read_delimited(path, fmt, options, dataset)


def _records(path: Path, sep: str, options: TableOptions, dataset: str | None) -> Iterator[tuple[int, list[str]]]:
    """``(first line, fields)`` of every non-blank record; a quoted field may span lines, so lines are tracked here."""
    line = 0
    try:
        with open(path, encoding=options.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=sep, quoting=_QUOTING[options.quoting])
            for fields in reader:
                start, line = line + 1, reader.line_num
                if fields:  # blank lines are skipped, as pandas does
                    yield start, fields
    except csv.Error as error:
        raise DataValidationError(f"{where(dataset, path)}, line {line + 1}: cannot parse ({error}).") from error
    except TypeError as error:  # csv rejects a separator that is not one character
        raise DataValidationError(f"{where(dataset, path)}: invalid separator {sep!r} ({error}).") from error
    except (UnicodeDecodeError, LookupError) as error:
        raise DataValidationError(f"{where(dataset, path)}: cannot decode the file ({error}).") from error


def _header(
    records: Iterator[tuple[int, list[str]]], options: TableOptions, path: Path, dataset: str | None
) -> list[str]:
    """Column names: ``names`` when given (a header line is then skipped), else the first record (BOM removed)."""
    if options.names and len(set(options.names)) != len(options.names):
        raise DataValidationError(f"{where(dataset, path)}: `names` repeats a column name: {list(options.names)}.")
    if not options.header:
        return list(options.names or ())
    first = next(records, None)
    if first is None:
        raise DataValidationError(f"{where(dataset, path)}: the file is empty; expected a header line.")
    if options.names:
        return list(options.names)
    _, names = first
    return _unique_names([names[0].removeprefix("\ufeff"), *names[1:]])


def _unique_names(names: list[str]) -> list[str]:
    """Repeated header names get ``.1``, ``.2`` suffixes, as pandas names them."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        out.append(name if count == 0 else f"{name}.{count}")
        seen[name] = count + 1
    return out


def _read_delimited(path: Path, fmt: FileFormat, options: TableOptions, dataset: str | None) -> SourceTable:
    """Read with :mod:`csv` (pandas' own dialect) rather than ``pd.read_csv``, which cannot say which line a row was."""
    if not options.header and not options.names:
        raise DataValidationError(f"{where(dataset, path)}: a file without a header needs `names`.")
    sep = options.sep or ("\t" if fmt == "tsv" else ",")
    records = _records(path, sep, options, dataset)
    names = _header(records, options, path, dataset)
    rows, origins, bad, cut = [], [], [], 0
    for line, fields in records:
        if len(fields) > len(names) and options.extra_fields == "drop":
            fields, cut = fields[: len(names)], cut + 1
        if len(fields) != len(names):
            bad.append(BadRow(str(path), line, f"{len(fields)} fields, expected {len(names)}"))
            continue
        rows.append(fields)
        origins.append((str(path), line))
    frame = pd.DataFrame(rows, columns=names, dtype=str) if rows else pd.DataFrame(columns=names, dtype=str)
    return SourceTable(frame, origins, bad, extra_field_lines=cut)


def _read_jsonl(path: Path, options: TableOptions, dataset: str | None) -> SourceTable:
    records, origins, bad = [], [], []
    opener: Any = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open
    try:
        with opener(path, "rt", encoding=options.encoding) as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                problem, record = _json_object(line)
                if problem:
                    bad.append(BadRow(str(path), line_number, problem))
                    continue
                records.append(record)
                origins.append((str(path), line_number))
    except (UnicodeDecodeError, LookupError, OSError, EOFError) as error:  # also a truncated .gz
        raise DataValidationError(f"{where(dataset, path)}: cannot read the file ({error}).") from error
    return SourceTable(pd.DataFrame.from_records(records), origins, bad)


def _json_object(line: str) -> tuple[str | None, dict[str, Any]]:
    """``(problem, record)``: a line that is not a JSON object is a malformed row, not a reason to stop reading."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return f"invalid JSON ({error.msg})", {}
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}", {}
    return None, record


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
