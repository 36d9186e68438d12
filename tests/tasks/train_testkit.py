"""Helpers for the train-stage tests: a small prepared listwise dataset as `prepare` writes it, and a run on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import TrackingConfig, TrainConfig
from tasks.train import run_train

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
    folder.mkdir(parents=True, exist_ok=True)  # a second run in the same root rewrites the same file
    frame = pd.DataFrame(
        {
            "query": [question for question, _, _ in QUESTIONS],
            "docs": [[positive, negative] for _, positive, negative in QUESTIONS],
            "labels": [[1.0, 0.0] for _ in QUESTIONS],
        }
    )
    frame.to_parquet(folder / "train.parquet", index=False)
    return root / "data" / "prepared"


def train_toy_model(root: Path, base: Path, tracking_uri: str | None = None, **overrides: Any) -> Path:
    """Run the train stage on the toy lists under ``root`` (2 epochs, 32 tokens, no evaluation); the model folder."""
    settings: dict[str, Any] = dict(
        base_model=str(base),
        datasets={DATASET: {"loss": "ListNetLoss"}},
        max_length=32,
        epochs=2,
        batch_size=2,
        logging_steps=1,
        evaluation={"steps": None},
    )
    tracking = TrackingConfig(tracking_uri=tracking_uri or f"sqlite:///{root / 'mlflow.db'}", experiment="toy-lists")
    out = root / "artifacts" / "trained"
    run_train(
        TrainConfig(**settings | overrides),
        tracking,
        prepared_toy_lists(root),
        root / "artifacts" / "checkpoints",
        out,
        root,
    )
    return out
