"""`rerank predict`: score (query, passage) pairs from a JSONL file, checking everything before the model loads.

Every line must be an object whose ``query`` and ``passage`` are non-empty strings: a number, null, list or
object would otherwise be scored as its Python spelling ("None", "123") and an empty pair scores like a
plausible match. The output is checked writable before any scoring and written atomically, so neither a bad path
nor an interruption costs the scores or leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from rerank_lib.atomic import write_text_atomic
from rerank_lib.errors import RerankError

FIELDS = ("query", "passage")
FIRST_STAGE_FIELD = "first_stage_score"  # optional: a package uses this score instead of computing its own


class PredictInputError(RerankError):
    """The pairs file or the output path cannot be used; the message names the file, line and field."""


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """The pairs of a JSONL file, in order; blank lines are skipped, anything else malformed is named by line."""
    path = Path(path)
    if not path.is_file():
        raise PredictInputError(f"--input {path}: no such file.")
    pairs = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    pairs.append(parse_pair(line, f"{path}, line {number}"))
    except UnicodeDecodeError as error:
        raise PredictInputError(f"{path}: not UTF-8 text ({error}).") from error
    return pairs


def read_first_stage_scores(path: str | Path) -> list[float] | None:
    """The optional ``first_stage_score`` of every line (a retriever's score a package mixes in), or None.

    Read after :func:`read_pairs` has checked the file. Given on some lines only, or not a finite number, is an error
    naming the line: a package scales one query's scores together, so a missing one cannot be filled in.
    """
    found: list[tuple[int, Any]] = []
    lines = 0
    with Path(path).open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                lines += 1
                row = json.loads(line)
                if FIRST_STAGE_FIELD in row:
                    found.append((number, row[FIRST_STAGE_FIELD]))
    if not found:
        return None
    if len(found) != lines:
        raise PredictInputError(
            f"{path}: {FIRST_STAGE_FIELD!r} is on {len(found)} of {lines} lines; give it on all or none."
        )
    for number, value in found:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PredictInputError(
                f"{path}, line {number}: {FIRST_STAGE_FIELD!r} must be a finite number, got {value!r}."
            )
    return [float(value) for _, value in found]


def parse_pair(line: str, where: str) -> tuple[str, str]:
    """One JSONL line as a (query, passage) pair of non-empty strings."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise PredictInputError(f"{where}: not valid JSON ({error.msg}).") from error
    if not isinstance(row, dict):
        raise PredictInputError(f"{where}: expected a JSON object with {list(FIELDS)}, got {type(row).__name__}.")
    values = []
    for field in FIELDS:
        if field not in row:
            raise PredictInputError(f"{where}: no {field!r} field (expected {list(FIELDS)}).")
        value = row[field]
        if not isinstance(value, str):
            raise PredictInputError(f"{where}: {field!r} must be a string, got {_json_type(value)}.")
        if not value.strip():
            raise PredictInputError(f"{where}: {field!r} is empty.")
        values.append(value)
    return values[0], values[1]


def _json_type(value: Any) -> str:
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


def check_output_writable(output: str) -> None:
    """Fail before scoring when the output cannot be written (no such folder, a folder, no permission)."""
    if output == "-":
        return
    target = Path(output)
    if target.is_dir():
        raise PredictInputError(f"--output {target} is a folder; give a file path.")
    folder = target.parent
    if not folder.is_dir():
        raise PredictInputError(f"--output {target}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise PredictInputError(f"--output {target}: not writable.")


def write_scores(output: str, pairs: list[tuple[str, str]], scores: Any) -> None:
    """One JSON line per pair with its score, to stdout or atomically to a file."""
    lines = [json.dumps({"query": q, "passage": p, "score": float(s)}) for (q, p), s in zip(pairs, scores, strict=True)]
    text = "\n".join(lines) + ("\n" if lines else "")
    if output == "-":
        sys.stdout.write(text)
        return
    write_text_atomic(output, text)
