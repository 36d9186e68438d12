"""Correlation evaluation: do the model's scores follow graded gold similarity scores (e.g. STS-B)?"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation.base import CrossEncoderEvaluator, predict_scores, validate_pairs
from rerank_lib.evaluation.metrics import correlation_metrics

logger = logging.getLogger(__name__)


class CrossEncoderCorrelationEvaluator(CrossEncoderEvaluator):
    """Pearson and Spearman correlation between model scores and gold scores; primary ``spearman``.

    Spearman is the primary metric because it only asks for the right order, which is what a reranker is used for.
    A model that gives every pair the same score has no defined correlation: the result is NaN, with a warning.
    """

    csv_prefix = "CrossEncoderCorrelationEvaluator"

    def __init__(
        self,
        sentence_pairs: Sequence[Sequence[str]],
        scores: Sequence[float],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ) -> None:
        super().__init__(name=name, batch_size=batch_size, show_progress_bar=show_progress_bar, write_csv=write_csv)
        self.sentence_pairs = validate_pairs(sentence_pairs, "Correlation")
        gold = []
        for index, value in enumerate(scores):
            number = float(value) if isinstance(value, (int, float, np.number)) else math.nan
            if not math.isfinite(number):
                raise DataValidationError(f"Correlation evaluator {name!r}: scores[{index}] is {value!r}.")
            gold.append(number)
        self.scores = np.array(gold, dtype=float)
        if len(self.scores) != len(self.sentence_pairs):
            raise DataValidationError(
                f"Correlation evaluator {name!r}: {len(self.scores)} scores for {len(self.sentence_pairs)} pairs."
            )
        if len(self.scores) < 2 or np.ptp(self.scores) == 0:
            raise DataValidationError(
                f"Correlation evaluator {name!r}: the gold scores need at least two different values."
            )
        self._primary = "spearman"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        predictions = predict_scores(model, self.sentence_pairs, self.batch_size, self.show_progress_bar)
        if predictions.ndim != 1:
            raise ValueError(
                f"CrossEncoderCorrelationEvaluator needs a model with one output per pair; got {predictions.shape[1]}."
            )
        results = self._finish(correlation_metrics(predictions, self.scores), output_path, epoch, steps)
        logger.info("Correlation evaluation %s (%d pairs): %s", self.name, len(self.scores), results)
        return results

    def get_config_dict(self) -> dict[str, Any]:
        return {"num_pairs": len(self.sentence_pairs)}
