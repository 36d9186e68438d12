"""Corpus embeddings cached on disk, so repeated mining runs over the same corpus embed it once.

Files are ``.npy`` arrays (numbers only, no pickle) keyed by the encoder's fingerprint (weights, config, tokenizer,
pooling, max_length; see :meth:`rerank_lib.bi_encoder.BiEncoder.fingerprint`) and a hash of the corpus texts:
changing either computes afresh, repeating a run reuses them.
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
from rerank_lib.cache import cache_dir as rerank_cache_dir

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$RERANK_LIB_CACHE/embeddings`` (else under ``$XDG_CACHE_HOME/rerank_lib`` or ``~/.cache/rerank_lib``)."""
    return rerank_cache_dir("embeddings")


def corpus_hash(texts: Sequence[str]) -> str:
    """SHA-256 of the texts in order (NUL-separated, so ``["ab"]`` and ``["a", "b"]`` differ)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def embed_corpus(
    encoder: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """Corpus embeddings, read from or written to ``cache_dir`` when the encoder has a fingerprint."""
    fingerprint = getattr(encoder, "fingerprint", None)
    if cache_dir is None or not callable(fingerprint):
        if cache_dir is not None:
            logger.warning("Embedding cache skipped: %s has no fingerprint().", type(encoder).__name__)
        return np.asarray(encoder.encode(list(texts), batch_size=batch_size, show_progress_bar=show_progress_bar))
    key = hashlib.sha256(f"{fingerprint()}:{corpus_hash(texts)}".encode()).hexdigest()
    path = Path(cache_dir) / f"{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                logger.info("Loaded %d corpus embeddings from %s.", len(texts), path)
                return cached
        except (OSError, ValueError) as error:
            logger.warning("Ignoring unreadable embedding cache %s (%s).", path, error)
    embeddings = np.asarray(encoder.encode(list(texts), batch_size=batch_size, show_progress_bar=show_progress_bar))
    buffer = io.BytesIO()
    np.save(buffer, embeddings.astype(np.float32, copy=False), allow_pickle=False)
    write_bytes_atomic(path, buffer.getvalue())
    return embeddings
