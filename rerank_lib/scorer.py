"""The one interface every scorer implements: score (query, passage) pairs, one number per pair, in input order.

The cross-encoder, the bi-encoder, BM25, a cache in front of any of them and a weighted mix of them all answer
``predict(pairs, batch_size=..., show_progress_bar=...)``, so evaluators, hard-negative mining, distillation teachers
and packaging take any of them. :class:`Scorer` declares that interface (a structural protocol: a class implements it
by having the method, as :class:`~rerank_lib.model.CrossEncoder` does); :class:`PairScorer` is the base of the
scorers written here, holding the input handling they share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Pairs = Sequence[Sequence[str]]


@runtime_checkable
class Scorer(Protocol):
    """Scores (query, passage) pairs: ``predict(pairs) -> np.ndarray`` of one float per pair, in input order."""

    def predict(self, sentences: Pairs, batch_size: int = ..., show_progress_bar: bool | None = ...) -> Any: ...


def as_pairs(sentences: Pairs) -> list[tuple[str, str]]:
    """The pairs as ``(str, str)`` tuples, so equal texts compare and hash alike whatever type they came in."""
    return [(str(query), str(document)) for query, document in sentences]


def rows_by_query(pairs: Sequence[tuple[str, str]]) -> dict[str, list[int]]:
    """The row numbers of each query's pairs, queries in first-seen order, for scores computed one query at a time."""
    rows: dict[str, list[int]] = {}
    for row, (query, _) in enumerate(pairs):
        rows.setdefault(query, []).append(row)
    return rows


class PairScorer(ABC):
    """A :class:`Scorer` with one output per pair: subclasses score a non-empty list of string pairs.

    ``default_batch_size`` applies when ``predict`` is called without ``batch_size``.
    """

    num_labels = 1
    default_batch_size = 32

    def predict(
        self, sentences: Pairs, batch_size: int | None = None, show_progress_bar: bool | None = None, **_: Any
    ) -> np.ndarray:
        """float32 scores in input order; extra keyword arguments of the cross-encoder's ``predict`` are ignored."""
        pairs = as_pairs(sentences)
        if not pairs:
            return np.empty(0, dtype=np.float32)
        scores = self.score(pairs, batch_size or self.default_batch_size, show_progress_bar)
        return np.asarray(scores).astype(np.float32, copy=False)

    @abstractmethod
    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        """One score per pair of a non-empty list."""
