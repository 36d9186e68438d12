"""Scores that do not depend on trained weights, kept on disk so that no retraining scores them twice.

A baseline bi-encoder, BM25 over a candidate pool or a fusion prior gives the same scores for the same pairs in every
run: :class:`DiskCachedScorer` stores each ``predict`` call's scores under a content hash of the scorer's identity and
every (query, document) of the call, so the next evaluation (or preparation) of unchanged data reads them back
instead of recomputing. Whole calls are the unit, which keeps the cache right for scorers whose scores depend on the
other pairs of a call (BM25's document statistics come from the pool it is given).

Files are written atomically (a temporary file renamed into place), so concurrent runs never read half a file; the
folder is bounded: after each write the least recently used files beyond ``max_bytes`` are removed. Deleting the
folder at any time is safe: it only costs recomputation.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rerank_lib.atomic import write_bytes_atomic
from rerank_lib.scorer import PairScorer

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3


def call_key(identity: str, pairs: Sequence[tuple[str, str]]) -> str:
    """A content hash of the scorer's identity and every pair, in order."""
    digest = hashlib.sha256(identity.encode("utf-8"))
    for query, document in pairs:
        digest.update(b"\x00")
        digest.update(query.encode("utf-8"))
        digest.update(b"\x01")
        digest.update(document.encode("utf-8"))
    return digest.hexdigest()


class ScoreStore:
    """A folder of ``<key>.npy`` score arrays, bounded to ``max_bytes`` (least recently used removed first)."""

    def __init__(self, folder: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def load(self, key: str, count: int) -> np.ndarray | None:
        path = self.folder / f"{key}.npy"
        try:
            scores = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if scores.shape != (count,):
            return None
        os.utime(path)  # recently used: kept longest
        return scores

    def save(self, key: str, scores: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(scores, dtype=np.float64), allow_pickle=False)
        write_bytes_atomic(self.folder / f"{key}.npy", buffer.getvalue())
        self.prune()

    def prune(self) -> None:
        """Remove the least recently used files until the folder fits in ``max_bytes``."""
        files = []
        for path in self.folder.glob("*.npy"):
            try:
                stat = path.stat()
            except OSError:
                continue  # removed by a concurrent run
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


class DiskCachedScorer(PairScorer):
    """Wraps a scorer whose scores depend only on its inputs; each call's scores are read from or written to a store.

    ``identity`` names everything the scores depend on besides the pairs (model fingerprint, settings); two scorers
    with the same identity must give the same scores.
    """

    def __init__(self, scorer: Any, identity: str, store: ScoreStore) -> None:
        self.scorer = scorer
        self.identity = identity
        self.store = store
        self.num_labels = getattr(scorer, "num_labels", 1)

    def __getattr__(self, name: str) -> Any:
        if name == "scorer":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.scorer, name)

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        key = call_key(self.identity, pairs)
        cached = self.store.load(key, len(pairs))
        if cached is not None:
            logger.info("Read %d scores of %s from the score cache.", len(pairs), type(self.scorer).__name__)
            return cached
        scores = np.asarray(
            self.scorer.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar), dtype=np.float64
        )
        self.store.save(key, scores)
        return scores
