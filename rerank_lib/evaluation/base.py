"""What every evaluator shares: result naming, CSV history and the model-card config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation.csv_log import append_csv_row


class CrossEncoderEvaluator:
    """Base class: ``evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]``.

    Result keys are ``{name}_{metric}`` (just ``{metric}`` when ``name`` is empty) so that several evaluators can be
    merged into one dict and logged side by side. ``primary_metric`` is the full key that decides model selection.
    """

    csv_prefix: str = "CrossEncoderEvaluator"

    def __init__(
        self, name: str = "", batch_size: int = 32, show_progress_bar: bool = False, write_csv: bool = True
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self._primary = ""

    @property
    def csv_file(self) -> str:
        return f"{self.csv_prefix}_results{'_' + self.name if self.name else ''}.csv"

    @property
    def primary_metric(self) -> str:
        return self._key(self._primary)

    def _key(self, metric: str) -> str:
        return f"{self.name}_{metric}" if self.name else metric

    def _finish(self, metrics: dict[str, float], output_path: str | None, epoch: float, steps: int) -> dict[str, float]:
        """Prefix keys, make the values plain floats, and append the CSV row."""
        results = {self._key(metric): _plain_float(value) for metric, value in metrics.items()}
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, {"epoch": epoch, "steps": steps, **results})
        return results

    def get_config_dict(self) -> dict[str, Any]:
        """Settings worth showing on the model card next to the results."""
        return {}

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        raise NotImplementedError


def _plain_float(value: Any) -> float:
    return float(value.item() if isinstance(value, np.generic) else value)


def predict_scores(model: Any, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool) -> np.ndarray:
    """Model scores as a float64 array: shape (n,) for one output, (n, outputs) otherwise."""
    if not pairs:
        return np.empty(0, dtype=float)
    raw = model.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar)
    if hasattr(raw, "detach"):
        raw = raw.detach().float().cpu().numpy()
    scores = np.asarray(raw, dtype=float)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    return scores


def validate_pairs(sentence_pairs: Sequence[Sequence[str]], kind: str) -> list[tuple[str, str]]:
    """Check every pair is two strings, naming the first bad index."""
    pairs = []
    for index, pair in enumerate(sentence_pairs):
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            raise DataValidationError(f"{kind} evaluator: sentence_pairs[{index}] is {pair!r}; expected two strings.")
        pairs.append((pair[0], pair[1]))
    if not pairs:
        raise DataValidationError(f"{kind} evaluator: sentence_pairs is empty.")
    return pairs
