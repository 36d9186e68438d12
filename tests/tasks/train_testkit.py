"""Helpers for the train-stage tests: a small prepared listwise dataset as `prepare` writes it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

QUESTIONS = [
    ("what is the capital of france", "paris is the capital of france", "the dog runs"),
    ("who reads a book", "the child reads a book", "a red car"),
    ("where does the cat sleep", "the cat sleeps in the car", "music and song"),
    ("what does the woman eat", "the woman eats food", "berlin is a city"),
    ("which river is in germany", "a river in germany", "the man reads"),
    ("what is a big city", "rome is a big city", "a small blue bus"),
]
DATASET = "toy-lists"


def prepared_toy_lists(root: Path) -> Path:
    """``root/data/prepared`` holding one listwise dataset: each question with its right and its wrong answer."""
    folder = root / "data" / "prepared" / DATASET
    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "query": [question for question, _, _ in QUESTIONS],
            "docs": [[positive, negative] for _, positive, negative in QUESTIONS],
            "labels": [[1.0, 0.0] for _ in QUESTIONS],
        }
    )
    frame.to_parquet(folder / "train.parquet", index=False)
    return root / "data" / "prepared"
