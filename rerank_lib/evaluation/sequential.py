"""Run several evaluators as one, so a trainer or a promotion gate sees one merged result dict."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from rerank_lib.errors import ConfigError
from rerank_lib.evaluation.base import CrossEncoderEvaluator
from rerank_lib.evaluation.csv_log import append_csv_row

logger = logging.getLogger(__name__)


class SequentialEvaluator(CrossEncoderEvaluator):
    """Calls each evaluator in turn and merges their results (keys must not collide).

    The primary metric is, in order of precedence:

    * ``primary_metric``: any key of the merged results (e.g. ``"dev_ndcg@10"``);
    * ``main_score_function``: applied to the list of each evaluator's primary score (e.g. ``statistics.mean``);
      its value is added as ``{name}_sequential_score`` and becomes the primary metric;
    * otherwise the last evaluator's primary metric.

    Each evaluator writes its own CSV; this one also appends the merged row to its own file.
    """

    csv_prefix = "SequentialEvaluator"

    def __init__(
        self,
        evaluators: Sequence[Any],
        main_score_function: Callable[[list[float]], float] | None = None,
        primary_metric: str | None = None,
        name: str = "",
        write_csv: bool = True,
    ) -> None:
        super().__init__(name=name, write_csv=write_csv)
        self.evaluators = list(evaluators)
        if not self.evaluators:
            raise ConfigError("SequentialEvaluator needs at least one evaluator.")
        if main_score_function is not None and primary_metric is not None:
            raise ConfigError("SequentialEvaluator: give either main_score_function or primary_metric, not both.")
        self.main_score_function = main_score_function
        self._chosen_primary = primary_metric

    @property
    def primary_metric(self) -> str:
        if self._chosen_primary is not None:
            return self._chosen_primary
        if self.main_score_function is not None:
            return self._key("sequential_score")
        return self.evaluators[-1].primary_metric

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        merged: dict[str, float] = {}
        primary_scores = []
        for evaluator in self.evaluators:
            results = evaluator(model, output_path=output_path, epoch=epoch, steps=steps)
            clashes = sorted(set(results) & set(merged))
            if clashes:
                raise ConfigError(
                    f"SequentialEvaluator: {type(evaluator).__name__} {getattr(evaluator, 'name', '')!r} reports "
                    f"{clashes[0]!r}, already reported by an earlier evaluator; give the evaluators distinct names."
                )
            merged.update({key: float(value) for key, value in results.items()})
            primary_scores.append(float(results[evaluator.primary_metric]))
        if self.main_score_function is not None:
            merged[self._key("sequential_score")] = float(self.main_score_function(primary_scores))
        if self.primary_metric not in merged:
            raise ConfigError(
                f"SequentialEvaluator: primary_metric {self.primary_metric!r} is not in the results {sorted(merged)}."
            )
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, {"epoch": epoch, "steps": steps, **merged})
        return merged

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "evaluators": [
                {"type": type(evaluator).__name__, "name": getattr(evaluator, "name", ""), **_config(evaluator)}
                for evaluator in self.evaluators
            ],
            "primary_metric": self.primary_metric,
        }


def _config(evaluator: Any) -> dict[str, Any]:
    getter = getattr(evaluator, "get_config_dict", None)
    return dict(getter()) if callable(getter) else {}
