"""Stage `prepare`: build every dataset of the catalog into ``data/prepared/<name>/`` (parquet + manifest.json).

All sources are checked before anything is built, so a missing file fails the stage at once with the hint to
run `dvc pull`, and nothing already prepared is touched (each dataset folder is replaced atomically). Every file
source is then read before any dataset is built, so malformed rows (``prepare.on_bad_rows: fail``) stop the stage
before mining, tokenizing or writing anything.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rerank_lib.errors import DataValidationError
from tasks.catalog import (
    DatasetEntry,
    FileSource,
    LoadedSource,
    build_dataset,
    load_source,
    read_prepared,
    write_prepared,
)
from tasks.config import PrepareConfig

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
TEST_SPLIT = "test"


@dataclass(frozen=True)
class PrepareResult:
    out_dir: Path
    manifests: dict[str, dict[str, Any]]


def source_paths(entry: DatasetEntry, root: Path) -> list[Path]:
    """The local files or folders an entry reads (Hub sources have none)."""
    source = entry.source
    if source.kind == "beir":
        return [root / source.folder]
    if source.kind == "file":
        paths = source.path.values() if isinstance(source.path, dict) else [source.path]
        return [root / path for path in paths if not any(ch in str(path) for ch in "*?[")]
    return []


def _configured_absolute(entry: DatasetEntry) -> bool:
    source = entry.source
    paths = [getattr(source, "folder", None)]
    path = getattr(source, "path", None)
    paths += list(path.values()) if isinstance(path, dict) else [path]
    return any(p is not None and Path(str(p)).is_absolute() for p in paths)


def check_sources(cfg: PrepareConfig, root: Path) -> None:
    """Fail before any work when a source file is missing, naming the dataset and the file."""
    for name, entry in cfg.datasets.items():
        if name in cfg.skip:
            continue
        for path in source_paths(entry, root):
            # Lexical check: `..` may not climb out of the project; symlinked data folders stay allowed.
            inside = Path(os.path.normpath(path)).is_relative_to(Path(os.path.normpath(root)))
            if not inside and not _configured_absolute(entry):
                raise DataValidationError(
                    f"dataset {name!r}: source {path} resolves outside the project {root}; "
                    "give an absolute path if that is deliberate."
                )
            if not path.exists():
                raise DataValidationError(
                    f"dataset {name!r}: source {path} is missing. Fetch the raw data with `dvc pull` (team remote)."
                )


def read_file_sources(cfg: PrepareConfig, root: Path) -> dict[str, LoadedSource]:
    """Read every file source to build, applying ``on_bad_rows``: malformed rows fail here, before any building."""
    return {
        name: load_source(name, entry, root, cfg.on_bad_rows)
        for name, entry in cfg.datasets.items()
        if name not in cfg.skip and isinstance(entry.source, FileSource)
    }


def run_prepare(cfg: PrepareConfig, root: Path, out: Path) -> PrepareResult:
    """Build every catalog entry that is not skipped; returns each dataset's manifest."""
    root, out = Path(root), Path(out)
    check_sources(cfg, root)
    loaded = read_file_sources(cfg, root)
    manifests = {}
    for name, entry in cfg.datasets.items():
        if name in cfg.skip:
            logger.info("Skipping dataset %s (prepare.skip)", name)
            continue
        prepared = build_dataset(name, entry, root, on_bad_rows=cfg.on_bad_rows, loaded=loaded.pop(name, None))
        manifests[name] = write_prepared(prepared, out / name)
    return PrepareResult(out, manifests)


def load_test_samples(prepared: Path, dataset: str, max_queries: int | None = None) -> list[dict]:
    """Reranking samples ``{"query", "positive", "negative"}`` of a prepared reranking dataset's test split."""
    folder = Path(prepared) / dataset
    if not (folder / f"{TEST_SPLIT}.parquet").is_file():
        raise DataValidationError(f"No prepared test split for dataset {dataset!r} in {folder}; run the prepare stage.")
    frame = read_prepared(folder, TEST_SPLIT)
    samples = [
        {"query": row.query, "positive": list(row.positive), "negative": list(row.negative)}
        for row in frame.itertuples(index=False)
    ]
    return samples[:max_queries] if max_queries else samples


def load_training_frame(prepared: Path, dataset: str, split: str) -> pd.DataFrame:
    folder = Path(prepared) / dataset
    if not (folder / f"{split}.parquet").is_file():
        raise DataValidationError(f"No prepared split {split!r} for dataset {dataset!r} in {folder}.")
    return read_prepared(folder, split)
