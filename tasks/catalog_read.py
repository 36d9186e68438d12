"""Reading a catalog entry's source: files (with the malformed-row policy), BEIR folders or a Hub dataset.

Cheap next to building (no conversion, mining or tokenizer), so prepare reads every source before it builds any.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rerank_lib.data.beir import read_beir_corpus, read_beir_judgments
from rerank_lib.data.checks import row_problems
from rerank_lib.data.formats import (
    DOCUMENT,
    LABEL,
    QUERY,
)
from rerank_lib.data.hub import load_hub_dataset
from rerank_lib.data.tables import (
    BAD_ROWS_LISTED,
    BadRow,
    SourceTable,
    describe_bad_rows,
    read_source,
    select_columns,
)
from rerank_lib.errors import DataValidationError
from tasks.catalog_schema import ROLES, TEXT_ROLES, BeirSource, DatasetEntry, FileSource, OnBadRows
from tasks.io import file_md5

logger = logging.getLogger(__name__)


@dataclass
class LoadedSource:
    """An entry's source as read: tables by split, input hashes, the mining corpus and facts for the manifest.

    ``skipped_rows`` counts the malformed rows dropped under ``on_bad_rows="skip"`` (None when not skipping).
    """

    tables: dict[str, pd.DataFrame]
    inputs: dict[str, str]
    corpus: dict[str, str] | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    skipped_rows: int | None = None


def _relative(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_source(name: str, entry: DatasetEntry, root: str | Path, on_bad_rows: OnBadRows = "fail") -> LoadedSource:
    """Read an entry's source; malformed rows of a file source fail the entry (``"fail"``) or are dropped (``"skip"``).

    Cheap next to building (no conversion, mining or tokenizer), so prepare reads every source before building any.
    """
    root = Path(root)
    source = entry.source
    if isinstance(source, FileSource):
        return _load_files(name, entry, source, root, on_bad_rows)
    if isinstance(source, BeirSource):
        folder = root / source.folder
        table = read_beir_judgments(folder, source.split, dataset=name)
        inputs = {
            _relative(path, root): file_md5(path)
            for pattern in ("corpus.jsonl*", "queries.jsonl*", f"qrels/{source.split}.tsv*")
            for path in sorted(folder.glob(pattern))
        }
        corpus = read_beir_corpus(folder) if entry.mining is not None else None
        facts = {source.split: {"judgments": len(table), **table.attrs}}
        return LoadedSource({source.split: _map_columns(name, entry, table, folder)}, inputs, corpus, facts)
    cache_dir = None if source.cache_dir is None else root / source.cache_dir
    table, facts = load_hub_dataset(
        source.id,
        source.config,
        source.split,
        revision=source.revision,
        cache_dir=cache_dir,
        offline=source.offline,
        dataset=name,
    )
    inputs = {f"hub:{source.id}/{source.config or 'default'}/{source.split}": str(facts["fingerprint"])}
    return LoadedSource(
        {source.split: _map_columns(name, entry, table, source.id)}, inputs, facts={source.split: facts}
    )


def _load_files(name: str, entry: DatasetEntry, source: FileSource, root: Path, on_bad_rows: OnBadRows) -> LoadedSource:
    paths = source.path if isinstance(source.path, dict) else {source.split: source.path}
    tables, inputs, facts, skipped = {}, {}, {}, 0
    for split, pattern in paths.items():
        expected = source.expected_rows
        expected = expected.get(split) if isinstance(expected, dict) else expected
        read = read_source(pattern, source.options(), root=root, dataset=name, expected_rows=expected)
        for file in read.files:
            inputs[_relative(file, root)] = file_md5(Path(file))
        facts[split] = {"rows_read": read.rows_read, "extra_field_lines": read.extra_field_lines}
        table = _map_columns(name, entry, read.frame, pattern)
        bad = _bad_rows(entry, read, table)
        if bad and on_bad_rows == "fail":
            raise DataValidationError(
                f"{describe_bad_rows(bad, name)}\nFix these rows, or set prepare.on_bad_rows: skip to drop them."
            )
        if on_bad_rows == "skip":
            table = _drop_bad_rows(name, table, read, bad)
            facts[split]["skipped_rows"] = len(bad)
            facts[split]["skipped_lines"] = [f"{_relative(row.file, root)}:{row.line}" for row in bad[:BAD_ROWS_LISTED]]
            skipped += len(bad)
        tables[split] = table
    return LoadedSource(tables, inputs, facts=facts, skipped_rows=skipped if on_bad_rows == "skip" else None)


def _bad_rows(entry: DatasetEntry, read: SourceTable, table: pd.DataFrame) -> list[BadRow]:
    """Rows the reader set aside plus rows with a missing or blank text or an unusable label, in file order.

    ``table`` (mapped to roles) says which roles the entry uses; the check runs on the source columns, so reasons name
    the columns of the user's file.
    """
    column = {role: entry.columns.get(role, role) for role in table.columns}
    texts = [column[role] for role in table.columns if role in TEXT_ROLES or role.startswith("negative_")]
    label = column[LABEL] if LABEL in column else None
    labels_map = entry.labels.map if entry.labels is not None else None
    problems = row_problems(
        read.frame,
        texts,
        label,
        labels_map,
        single_text_columns=[column[role] for role in (QUERY, DOCUMENT) if role in column],
    )
    bad = [*read.bad_rows, *(BadRow(*read.origins[position], reason) for position, reason in problems.items())]
    order = {file: index for index, file in enumerate(read.files)}
    return sorted(bad, key=lambda row: (order.get(row.file, 0), row.line))


def _drop_bad_rows(name: str, table: pd.DataFrame, read: SourceTable, bad: list[BadRow]) -> pd.DataFrame:
    """The table without the malformed rows, logged with their lines; a table with none left is still an error."""
    if not bad:
        return table
    if len(bad) == read.rows_read:
        raise DataValidationError(
            f"{describe_bad_rows(bad, name)}\nEvery row is malformed; check the entry's `columns`, `labels` and "
            "reader options."
        )
    logger.warning("Skipping malformed rows (prepare.on_bad_rows: skip): %s", describe_bad_rows(bad, name))
    dropped = {(row.file, row.line) for row in bad}
    keep = [origin not in dropped for origin in read.origins]
    kept = table[keep].reset_index(drop=True)
    kept.attrs = dict(table.attrs)
    return kept


def _map_columns(name: str, entry: DatasetEntry, table: pd.DataFrame, source: Any) -> pd.DataFrame:
    """Rename mapped columns to their roles; columns already named after a role the mapping leaves out are kept."""
    if not entry.columns:
        return table
    mapping = dict(entry.columns)
    used = set(mapping.values())
    for column in table.columns:
        is_role = column in ROLES or re.fullmatch(r"negative_[1-9]\d*", str(column))
        if is_role and column not in mapping and column not in used:
            mapping[column] = column
    return select_columns(table, mapping, dataset=name, source=source)
