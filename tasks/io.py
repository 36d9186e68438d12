"""Small file helpers: hashes for manifests and lineage, and atomic writes so a crash never leaves half a file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rerank_lib.atomic import write_text_atomic

__all__ = ["file_md5", "tree_md5", "write_json_atomic", "write_text_atomic"]


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_md5(path: Path, leave_out: frozenset[str] = frozenset()) -> str:
    """One hash over every file of a folder (names and contents; files named in ``leave_out`` skipped), or a file."""
    if path.is_file():
        return file_md5(path)
    digest = hashlib.md5()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in leave_out):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file_md5(file).encode())
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
