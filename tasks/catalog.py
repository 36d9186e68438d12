"""The dataset catalog of params.yaml: each entry built into ``data/prepared/<name>/`` (parquet + manifest.json).

:func:`build_dataset` reads an entry's source (:mod:`tasks.catalog_read`) and runs its build steps
(:mod:`tasks.catalog_steps`); :func:`write_prepared` writes the tables and the manifest (source hashes, row counts,
format, columns) atomically. The schema of an entry is :mod:`tasks.catalog_schema`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.data.tables import (
    as_list,
    list_cells,
)
from tasks.catalog_read import LoadedSource, load_source
from tasks.catalog_schema import (
    BeirSource,
    Catalog,
    DatasetEntry,
    FileSource,
    HubSource,
    OnBadRows,
    parse_catalog,
)
from tasks.catalog_steps import (
    convert_and_mine,
    join_passages,
    relabel,
    split_and_select,
    validate_outputs,
    with_teacher_scores,
)
from tasks.io import file_md5, write_json_atomic

logger = logging.getLogger(__name__)

# The catalog's public face: the schema, reading, building and writing of an entry.
__all__ = [
    "BeirSource",
    "Catalog",
    "DatasetEntry",
    "FileSource",
    "HubSource",
    "LoadedSource",
    "OnBadRows",
    "PreparedDataset",
    "build_dataset",
    "load_source",
    "parse_catalog",
    "read_prepared",
    "write_prepared",
]

MANIFEST_FILE = "manifest.json"


@dataclass
class PreparedDataset:
    """The tables of one catalog entry, by split, and the facts its manifest records."""

    name: str
    format: str
    splits: dict[str, pd.DataFrame]
    manifest: dict[str, Any] = field(default_factory=dict)


def build_dataset(
    name: str,
    entry: DatasetEntry,
    root: str | Path = ".",
    tokenizer: Any = None,
    *,
    on_bad_rows: OnBadRows = "fail",
    loaded: LoadedSource | None = None,
) -> PreparedDataset:
    """Read one catalog entry and run its build steps (:mod:`tasks.catalog_steps`) in order.

    ``tokenizer`` overrides ``validation.tokenizer`` (tests pass one to avoid loading a model). ``loaded`` is the
    entry's source from :func:`load_source`, when the caller read every source first to fail before any building.
    """
    root = Path(root)
    loaded = loaded if loaded is not None else load_source(name, entry, root, on_bad_rows)
    tables = {split: relabel(name, entry, table) for split, table in loaded.tables.items()}
    tables, answerable = join_passages(name, entry, tables)
    converted, mining_stats = convert_and_mine(name, entry, tables, loaded.corpus, root, answerable)
    if entry.teacher is not None:
        converted = {split: with_teacher_scores(name, entry.teacher, t, root) for split, t in converted.items()}
    outputs = split_and_select(name, entry, converted)
    validation = validate_outputs(name, entry, outputs, root, tokenizer)
    manifest = _manifest(name, entry, outputs, loaded, mining_stats, validation)
    return PreparedDataset(name, entry.format.value, outputs, manifest)


def _manifest(
    name: str,
    entry: DatasetEntry,
    outputs: dict[str, pd.DataFrame],
    loaded: LoadedSource,
    mining_stats: dict[str, Any],
    validation: dict[str, Any],
) -> dict[str, Any]:
    """What manifest.json records about how the dataset was built (output hashes are added when it is written)."""
    manifest = {
        "name": name,
        "format": entry.format.value,
        "columns": list(next(iter(outputs.values())).columns),
        "rows": sum(len(table) for table in outputs.values()),
        "splits": {split: {"file": f"{split}.parquet", "rows": len(table)} for split, table in outputs.items()},
        "source": entry.source.model_dump(mode="json"),
        "inputs": loaded.inputs,
        "read": loaded.facts,
        "mining": mining_stats or None,
        "validation": validation or None,
        "entry": entry.model_dump(mode="json", exclude_none=True),
    }
    if loaded.skipped_rows is not None:
        manifest["skipped_rows"] = loaded.skipped_rows
    if entry.split is not None:
        manifest["split"] = split_record(entry, outputs)
    return manifest


def split_record(entry: DatasetEntry, outputs: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """How the entry's split rule cut it: the rule, and the groups (queries) and rows in each part.

    Parts other than ``train`` are held out: training reads ``train.datasets.<name>.split`` (default ``train``) and
    params refuse a held-out part there (:mod:`tasks.held_out`).
    """
    rules = entry.split
    assert rules is not None
    column = rules.group_by
    return {
        "seed": rules.seed,
        "group_by": column,
        "fractions": dict(rules.fractions),
        "held_out": [name for name in rules.fractions if name != "train"],
        "groups": {
            name: int(table[column].astype(str).nunique()) if column in table.columns else len(table)
            for name, table in outputs.items()
        },
        "rows": {name: len(table) for name, table in outputs.items()},
    }


def write_prepared(prepared: PreparedDataset, out: str | Path) -> dict[str, Any]:
    """Write ``<split>.parquet`` files and ``manifest.json`` (with output hashes) into ``out``, atomically."""
    manifest = dict(prepared.manifest)

    def write(staging: Path) -> None:
        outputs = {}
        for split, table in prepared.splits.items():
            path = staging / f"{split}.parquet"
            table.to_parquet(path, index=False)
            outputs[path.name] = file_md5(path)
        manifest["outputs"] = outputs
        write_json_atomic(staging / MANIFEST_FILE, manifest)

    build_directory_atomic(Path(out), write)
    rows = {split: len(table) for split, table in prepared.splits.items()}
    logger.info("Prepared dataset %s (%s): %s rows in %s", prepared.name, prepared.format, rows, out)
    return manifest


def read_prepared(folder: str | Path, split: str) -> pd.DataFrame:
    """A split written by :func:`write_prepared`, with list cells as plain lists."""
    frame = pd.read_parquet(Path(folder) / f"{split}.parquet")
    for column in frame.columns:
        if len(frame) and as_list(frame[column].iloc[0]) is not None:
            frame[column] = list_cells(frame[column].tolist())
    return frame
