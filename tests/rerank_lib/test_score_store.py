"""The on-disk score cache: a repeated call is read back, the folder stays within its bound, a damaged file is
recomputed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from rerank_lib.score_store import DiskCachedScorer, ScoreStore, call_key
from rerank_lib.scorer import PairScorer


class LengthScorer(PairScorer):
    """Scores a pair by the length of its document, and counts the pairs it scored."""

    def __init__(self) -> None:
        self.scored = 0

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        self.scored += len(pairs)
        return np.array([len(document) for _, document in pairs], dtype=float)


PAIRS = [("q", "a short text"), ("q", "a much longer text than that"), ("r", "x")]


def test_a_repeated_call_is_read_back_and_a_new_one_computed(tmp_path: Path) -> None:
    store = ScoreStore(tmp_path)
    first = DiskCachedScorer(LengthScorer(), "length-v1", store)
    scores = first.predict(PAIRS)
    again = DiskCachedScorer(LengthScorer(), "length-v1", store)  # the next run: a new process, a new scorer
    np.testing.assert_array_equal(again.predict(PAIRS), scores)
    assert again.scorer.scored == 0
    again.predict(PAIRS[:2])  # another call: other pairs, other key
    assert again.scorer.scored == 2
    other = DiskCachedScorer(LengthScorer(), "length-v2", store)  # another identity never reads these scores
    other.predict(PAIRS)
    assert other.scorer.scored == 3


def test_keys_depend_on_every_text_and_the_order() -> None:
    assert call_key("s", PAIRS) == call_key("s", list(PAIRS))
    assert call_key("s", PAIRS) != call_key("s", PAIRS[::-1])
    assert call_key("s", [("ab", "c")]) != call_key("s", [("a", "bc")])


def test_the_folder_keeps_the_most_recently_used_within_its_bound(tmp_path: Path) -> None:
    store = ScoreStore(tmp_path, max_bytes=3 * (128 + 8 * 100))
    for index in range(5):
        store.save(f"k{index}", np.arange(100, dtype=float))
        os.utime(tmp_path / f"k{index}.npy", (time.time() - 100 + index, time.time() - 100 + index))
    store.prune()
    assert sorted(p.stem for p in tmp_path.glob("*.npy")) == ["k2", "k3", "k4"]
    assert store.load("k2", 100) is not None


def test_a_damaged_or_mismatched_file_is_recomputed(tmp_path: Path) -> None:
    store = ScoreStore(tmp_path)
    scorer = DiskCachedScorer(LengthScorer(), "length-v1", store)
    scorer.predict(PAIRS)
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(b"not numpy")
    assert store.load(path.stem, 3) is None
    fresh = DiskCachedScorer(LengthScorer(), "length-v1", store)
    np.testing.assert_array_equal(fresh.predict(PAIRS), [12, 28, 1])
    assert fresh.scorer.scored == 3 and store.load(path.stem, 2) is None  # a wrong length is no hit either
