"""Where rerank_lib keeps what it can recompute (BM25 indexes, corpus embeddings): one root, a folder per kind."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """``$RERANK_LIB_CACHE/<kind>``, else ``$XDG_CACHE_HOME/rerank_lib/<kind>``, else ``~/.cache/rerank_lib/<kind>``."""
    root = os.environ.get("RERANK_LIB_CACHE")
    if root:
        return Path(root).expanduser() / kind
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "rerank_lib" / kind
