"""Reranking evaluation: does the model put relevant passages at the top of each query's candidates?"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation.base import CrossEncoderEvaluator, predict_scores
from rerank_lib.evaluation.metrics import ranking_metrics

logger = logging.getLogger(__name__)


@dataclass
class _Ranking:
    """One ranked list to score: candidate grades in candidate order, plus judged documents it does not contain."""

    grades: np.ndarray
    missing_grades: list[float] = field(default_factory=list)


@dataclass
class _Query:
    query: str
    documents: list[str]
    model: _Ranking
    base: _Ranking | None


class CrossEncoderRerankingEvaluator(CrossEncoderEvaluator):
    """MAP, MRR@k and NDCG@k of the model's ranking of each sample's candidates.

    Samples take one of three shapes:

    * ``{"query", "positive": [...], "negative": [...]}``: rerank positives and negatives together;
    * ``{"query", "positive": [...], "documents": [...]}``: rerank a first-stage list (best first). ``base_*``
      metrics score the first-stage order, where positives missing from ``documents`` are misses. For the model,
      missing positives are added to the candidates when ``always_rerank_positives`` and are misses otherwise;
    * ``{"query", "documents": [...], "relevance": [grades]}``: graded relevance (e.g. TREC 0-3) for a first-stage
      list; NDCG uses the grades as linear gains, MAP and MRR count grade > 0 as relevant; ``base_*`` as above.

    Samples without any relevant document are skipped (nothing to rank well or badly) and logged. Tied model scores
    get the expected metric over all orders of the tie (see :mod:`rerank_lib.evaluation.metrics`).
    """

    csv_prefix = "CrossEncoderRerankingEvaluator"

    def __init__(
        self,
        samples: Sequence[dict[str, Any]],
        at_k: int = 10,
        always_rerank_positives: bool = True,
        name: str = "",
        batch_size: int = 64,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ) -> None:
        super().__init__(name=name, batch_size=batch_size, show_progress_bar=show_progress_bar, write_csv=write_csv)
        if at_k < 1:
            raise ValueError(f"at_k must be at least 1, got {at_k}.")
        self.samples = list(samples)
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self._primary = f"ndcg@{at_k}"
        self._queries = [self._prepare(index, sample) for index, sample in enumerate(self.samples)]
        self.num_skipped = sum(query is None for query in self._queries)
        if self.num_skipped:
            logger.warning(
                "Reranking evaluator %r: skipping %d of %d samples without a relevant document.",
                name,
                self.num_skipped,
                len(self.samples),
            )
        if self.num_skipped == len(self._queries):
            raise DataValidationError(f"Reranking evaluator {name!r}: no sample has a relevant document.")

    @property
    def csv_file(self) -> str:
        return f"{self.csv_prefix}_results_@{self.at_k}{'_' + self.name if self.name else ''}.csv"

    @property
    def metric_names(self) -> list[str]:
        return ["map", f"mrr@{self.at_k}", f"ndcg@{self.at_k}"]

    # ----- sample preparation -----
    def _prepare(self, index: int, sample: Any) -> _Query | None:
        where = f"Reranking sample {index}"
        if not isinstance(sample, dict):
            raise DataValidationError(f"{where} is a {type(sample).__name__}; expected a dict.")
        if not isinstance(sample.get("query"), str):
            raise DataValidationError(f"{where}: 'query' is missing or not a string.")
        if "relevance" in sample:
            documents = _texts(sample, "documents", where)
            grades = _grades(sample["relevance"], where)
            if len(grades) != len(documents):
                raise DataValidationError(
                    f"{where}: 'relevance' has {len(grades)} grades for {len(documents)} documents."
                )
            if not (grades > 0).any():
                return None
            ranking = _Ranking(grades)
            return _Query(sample["query"], documents, ranking, _Ranking(grades))
        if "positive" not in sample:
            raise DataValidationError(f"{where} needs 'positive' (with 'negative' or 'documents') or 'relevance'.")
        positives = list(dict.fromkeys(_texts(sample, "positive", where)))
        if not positives:
            return None
        positive_set = set(positives)
        if "documents" not in sample:
            negatives = _texts(sample, "negative", where) if "negative" in sample else []
            documents = positives + negatives
            grades = np.array([1.0] * len(positives) + [0.0] * len(negatives))
            return _Query(sample["query"], documents, _Ranking(grades), None)
        first_stage = _texts(sample, "documents", where)
        first_stage_set = set(first_stage)
        missing = [positive for positive in positives if positive not in first_stage_set]
        base_grades = np.array([1.0 if doc in positive_set else 0.0 for doc in first_stage])
        base = _Ranking(base_grades, [1.0] * len(missing))
        if self.always_rerank_positives and missing:
            documents = first_stage + missing
            model = _Ranking(np.concatenate([base_grades, np.ones(len(missing))]))
        else:
            documents = first_stage
            model = _Ranking(base_grades, [1.0] * len(missing))
        return _Query(sample["query"], documents, model, base)

    # ----- evaluation -----
    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        queries = [query for query in self._queries if query is not None]
        pairs = [(query.query, document) for query in queries for document in query.documents]
        scores = predict_scores(model, pairs, self.batch_size, self.show_progress_bar)
        if scores.ndim != 1:
            raise ValueError(
                f"CrossEncoderRerankingEvaluator needs a model with one output per pair; got {scores.shape[1]}."
            )
        if np.isnan(scores).any():
            logger.warning("Reranking evaluator %r: the model produced NaN scores; they rank last.", self.name)

        model_rows, base_rows = [], []
        start = 0
        for query in queries:
            count = len(query.documents)
            model_rows.append(self._metrics(scores[start : start + count], query.model))
            start += count
            if query.base is not None:
                # The first-stage order: strictly decreasing scores, so no ties.
                base_rows.append(self._metrics(-np.arange(len(query.base.grades), dtype=float), query.base))

        metrics = {metric: float(np.mean([row[metric] for row in model_rows])) for metric in self.metric_names}
        if base_rows and len(base_rows) == len(model_rows):
            metrics.update(
                {f"base_{metric}": float(np.mean([row[metric] for row in base_rows])) for metric in self.metric_names}
            )
        elif base_rows:
            logger.info("Reranking evaluator %r: base_* metrics need a first-stage list in every sample.", self.name)
        results = self._finish(metrics, output_path, epoch, steps)
        logger.info("Reranking evaluation %s (%d queries): %s", self.name, len(model_rows), results)
        return results

    def _metrics(self, scores: np.ndarray, ranking: _Ranking) -> dict[str, float]:
        return ranking_metrics(scores, ranking.grades, self.at_k, missing_grades=ranking.missing_grades)

    def get_config_dict(self) -> dict[str, Any]:
        return {"at_k": self.at_k, "always_rerank_positives": self.always_rerank_positives}


def _texts(sample: dict[str, Any], key: str, where: str) -> list[str]:
    value = sample.get(key)
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise DataValidationError(f"{where}: {key!r} must be a list of strings, got {type(value).__name__}.")
    for position, item in enumerate(value):
        if not isinstance(item, str):
            raise DataValidationError(f"{where}: {key!r}[{position}] is a {type(item).__name__}, not a string.")
    return list(value)


def _grades(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise DataValidationError(f"{where}: 'relevance' must be a list of numbers.")
    grades = []
    for position, grade in enumerate(value):
        if not isinstance(grade, (int, float, np.number)) or not math.isfinite(grade):
            raise DataValidationError(f"{where}: 'relevance'[{position}] is {grade!r}; expected a finite number.")
        grades.append(float(grade))
    return np.array(grades, dtype=float)
