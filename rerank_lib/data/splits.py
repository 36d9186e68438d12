"""Deterministic, seeded train/dev/test splits that keep related rows together.

A row's split depends only on the seed and its group key (e.g. its query text), hashed with SHA-256: the same
data and seed give the same split on every machine and library version, rows never move when other rows are
added or reordered, and all rows of a group land in one split, so no query leaks from train into test. The price
is that split sizes match the fractions only approximately (within a few groups of the expected size).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rerank_lib.data.tables import is_missing
from rerank_lib.errors import DataValidationError


def check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise ValueError("A split needs at least one named fraction.")
    if any(not value > 0 for value in fractions.values()):
        raise ValueError(f"Split fractions must be positive; got {dict(fractions)}.")
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"Split fractions must sum to 1; got {dict(fractions)} (sum {sum(fractions.values())}).")


def bucket(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from the seed and the key, identical everywhere."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(keys: Sequence[str], fractions: Mapping[str, float], seed: int) -> list[str]:
    """The split name of each key, in order."""
    check_fractions(fractions)
    names = list(fractions)
    edges = np.cumsum([fractions[name] for name in names])
    edges[-1] = 1.0
    return [names[int(np.searchsorted(edges, bucket(key, seed), side="right"))] for key in keys]


def split_frame(
    frame: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int,
    group_by: str | Sequence[str] | None = None,
    dataset: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Split rows into ``{name: frame}`` by ``fractions`` (e.g. ``{"train": 0.8, "test": 0.2}``).

    ``group_by`` names the column(s) whose equal values stay together; ``None`` groups by the whole row.
    Every split keeps the original row order.
    """
    columns = [group_by] if isinstance(group_by, str) else list(group_by or frame.columns)
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataValidationError(f"dataset {dataset!r}: split group column(s) {missing} do not exist.")
    keys = []
    for row, values in enumerate(frame[columns].itertuples(index=False, name=None)):
        if any(is_missing(value) for value in values):
            raise DataValidationError(f"dataset {dataset!r}: row {row} has no value in split column(s) {columns}.")
        keys.append("\x1f".join(repr(value) if not isinstance(value, str) else value for value in values))
    names = np.asarray(assign_splits(keys, fractions, seed))
    return {name: frame[names == name].reset_index(drop=True) for name in fractions}
