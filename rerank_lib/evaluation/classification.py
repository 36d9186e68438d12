"""Classification evaluation: how well do the model's scores separate labelled pairs?"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation.base import CrossEncoderEvaluator, predict_scores, validate_pairs
from rerank_lib.evaluation.metrics import (
    binary_classification_metrics,
    binary_metrics_at_thresholds,
    multiclass_classification_metrics,
)

logger = logging.getLogger(__name__)


class CrossEncoderClassificationEvaluator(CrossEncoderEvaluator):
    """Accuracy/F1 of a cross-encoder on labelled pairs; the metric set follows the model's number of outputs.

    * One output (binary, labels 0/1): ``accuracy``, ``accuracy_threshold``, ``f1``, ``f1_threshold``,
      ``precision``, ``recall`` (at the F1 threshold) and ``average_precision`` (primary). Thresholds come from a
      sweep over the model's scores, so a model is judged on how well it separates the classes rather than on its
      calibration; see :func:`rerank_lib.evaluation.metrics.binary_classification_metrics`.
    * Several outputs (labels are class ids): ``accuracy``, ``f1_macro`` (primary), ``f1_micro``, ``f1_weighted``
      of the argmax class.

    The primary metric depends on the model; before the first call it assumes the kind implied by the labels
    (binary when they are all 0/1).

    ``threshold_pairs`` / ``threshold_labels`` (one output only): choose the accuracy and F1 thresholds on these
    pairs (a dev split) and report the evaluated pairs' accuracy, F1, precision and recall at those thresholds,
    instead of at thresholds swept on the evaluated pairs themselves.
    """

    csv_prefix = "CrossEncoderClassificationEvaluator"

    def __init__(
        self,
        sentence_pairs: Sequence[Sequence[str]],
        labels: Sequence[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        threshold_pairs: Sequence[Sequence[str]] | None = None,
        threshold_labels: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, batch_size=batch_size, show_progress_bar=show_progress_bar, write_csv=write_csv)
        self.sentence_pairs = validate_pairs(sentence_pairs, "Classification")
        self.threshold_pairs = validate_pairs(threshold_pairs, "Classification") if threshold_pairs else None
        self.threshold_labels = _validate_labels(threshold_labels) if threshold_labels is not None else None
        if (self.threshold_pairs is None) != (self.threshold_labels is None) or (
            self.threshold_pairs is not None and len(self.threshold_pairs) != len(self.threshold_labels)
        ):
            raise DataValidationError(f"Classification evaluator {name!r}: threshold pairs and labels do not match.")
        self.labels = _validate_labels(labels)
        if len(self.labels) != len(self.sentence_pairs):
            raise DataValidationError(
                f"Classification evaluator {name!r}: {len(self.labels)} labels for {len(self.sentence_pairs)} pairs."
            )
        binary = bool(np.isin(self.labels, (0, 1)).all())
        self._primary = "average_precision" if binary else "f1_macro"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        num_labels = getattr(model, "num_labels", None)
        if num_labels == 1:
            self._check_binary_labels()
        scores = predict_scores(model, self.sentence_pairs, self.batch_size, self.show_progress_bar)
        if scores.ndim == 1:
            self._check_binary_labels()
            metrics = self._binary_metrics(model, scores)
            self._primary = "average_precision"
        else:
            outputs = scores.shape[1]
            out_of_range = np.flatnonzero(self.labels >= outputs)
            if out_of_range.size:
                first = int(out_of_range[0])
                raise DataValidationError(
                    f"Classification evaluator {self.name!r}: label {int(self.labels[first])} of pair {first} "
                    f"is not a class of a model with {outputs} outputs."
                )
            metrics = multiclass_classification_metrics(np.argmax(scores, axis=1), self.labels)
            self._primary = "f1_macro"
        results = self._finish(metrics, output_path, epoch, steps)
        logger.info("Classification evaluation %s (%d pairs): %s", self.name, len(self.labels), results)
        return results

    def _binary_metrics(self, model: Any, scores: np.ndarray) -> dict[str, float]:
        """Thresholds swept on the evaluated pairs, or chosen on the threshold pairs and applied here."""
        if self.threshold_pairs is None:
            return binary_classification_metrics(scores, self.labels)
        chosen_on = predict_scores(model, self.threshold_pairs, self.batch_size, self.show_progress_bar)
        swept = binary_classification_metrics(chosen_on, self.threshold_labels)
        return binary_metrics_at_thresholds(scores, self.labels, swept["accuracy_threshold"], swept["f1_threshold"])

    def _check_binary_labels(self) -> None:
        bad = np.flatnonzero(~np.isin(self.labels, (0, 1)))
        if bad.size:
            raise DataValidationError(
                f"Classification evaluator {self.name!r}: a one-output model needs labels 0/1, but pair "
                f"{int(bad[0])} has label {int(self.labels[bad[0]])}."
            )
        if not self.labels.any():
            raise DataValidationError(
                f"Classification evaluator {self.name!r}: no pair has label 1, so precision, F1 and average "
                "precision are undefined."
            )

    def get_config_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {"num_pairs": len(self.sentence_pairs)}
        if self.threshold_pairs is not None:
            config["threshold_pairs"] = len(self.threshold_pairs)
        return config


def _validate_labels(labels: Sequence[int]) -> np.ndarray:
    values = []
    for index, label in enumerate(labels):
        number = float(label) if isinstance(label, (int, float, np.number)) else math.nan
        if not math.isfinite(number) or number != int(number) or number < 0:
            raise DataValidationError(
                f"Classification evaluator: labels[{index}] is {label!r}; expected a class id (0, 1, ...)."
            )
        values.append(int(number))
    return np.array(values, dtype=np.int64)
