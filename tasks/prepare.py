"""Stage `prepare`: raw WikiQA into training pairs and reranking samples, written as parquet plus a manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.data import read_wikiqa_pairs, read_wikiqa_reranking_samples
from rerank_lib.errors import DataValidationError
from tasks.config import PrepareConfig
from tasks.io import file_md5, write_json_atomic

logger = logging.getLogger(__name__)

TRAIN_FILE = "train.parquet"
TEST_FILE = "test.parquet"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class PrepareResult:
    out_dir: Path
    train_pairs: int
    test_queries: int
    manifest: dict


def run_prepare(cfg: PrepareConfig, raw_dir: Path, out: Path) -> PrepareResult:
    """Read WikiQA train and test, validate them, and write ``train.parquet``, ``test.parquet`` and a manifest."""
    raw_dir = Path(raw_dir)
    train_path, test_path = raw_dir / cfg.train_file, raw_dir / cfg.test_file
    for path in (train_path, test_path):
        if not path.is_file():
            raise DataValidationError(
                f"Raw data file {path} is missing. Fetch the raw data with `dvc pull` (team remote)."
            )
    pairs = read_wikiqa_pairs(train_path, expected_rows=cfg.expected_train_rows)
    if cfg.max_train_pairs is not None and cfg.max_train_pairs < len(pairs):
        pairs = pairs.sample(n=cfg.max_train_pairs, random_state=cfg.seed).reset_index(drop=True)
    samples = read_wikiqa_reranking_samples(test_path)
    if cfg.max_test_queries is not None:
        samples = samples[: cfg.max_test_queries]
    if pairs.empty:
        raise DataValidationError(f"{train_path}: no training pairs left after filtering.")
    if not samples:
        raise DataValidationError(f"{test_path}: no question has both a correct and a wrong sentence.")

    test_frame = pd.DataFrame(samples)
    manifest = {
        "inputs": {str(train_path.name): file_md5(train_path), str(test_path.name): file_md5(test_path)},
        "train": {"rows": len(pairs), "positives": int(pairs["label"].sum()), "columns": list(pairs.columns)},
        "test": {
            "queries": len(samples),
            "documents": int(sum(len(s["positive"]) + len(s["negative"]) for s in samples)),
        },
    }

    def write(staging: Path) -> None:
        pairs.to_parquet(staging / TRAIN_FILE, index=False)
        test_frame.to_parquet(staging / TEST_FILE, index=False)
        manifest["outputs"] = {name: file_md5(staging / name) for name in (TRAIN_FILE, TEST_FILE)}
        write_json_atomic(staging / MANIFEST_FILE, manifest)

    build_directory_atomic(Path(out), write)
    logger.info("Prepared %d training pairs and %d test queries in %s", len(pairs), len(samples), out)
    return PrepareResult(Path(out), len(pairs), len(samples), manifest)


def load_test_samples(prepared: Path) -> list[dict]:
    """The reranking samples written by ``run_prepare``, as plain lists."""
    frame = pd.read_parquet(Path(prepared) / TEST_FILE)
    return [
        {"query": row.query, "positive": list(row.positive), "negative": list(row.negative)}
        for row in frame.itertuples(index=False)
    ]
