"""Reranking evaluation: does the model put relevant passages at the top of each query's candidates?"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation.csv_log import append_csv_row
from rerank_lib.evaluation.metrics import average_precision, ndcg_at_k, reciprocal_rank_at_k

logger = logging.getLogger(__name__)


class CrossEncoderRerankingEvaluator:
    """MAP, MRR@k and NDCG@k of the model's ranking of each sample's candidates.

    Samples take one of three shapes:

    * ``{"query", "positive": [...], "negative": [...]}``: rerank positives and negatives together;
    * ``{"query", "positive": [...], "documents": [...]}``: rerank a first-stage list; ``base_*`` metrics
      score the first-stage order; positives missing from ``documents`` are added when
      ``always_rerank_positives`` and count as misses otherwise;
    * ``{"query", "documents": [...], "relevance": [grades]}``: graded relevance; NDCG uses graded gains.
    """

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
        self.samples = list(samples)
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = f"CrossEncoderRerankingEvaluator_results_@{at_k}{'_' + name if name else ''}.csv"
        self._validate()

    def _validate(self) -> None:
        for index, sample in enumerate(self.samples):
            if "query" not in sample:
                raise DataValidationError(f"Reranking sample {index} has no 'query' key.")
            if "documents" not in sample and "positive" not in sample:
                raise DataValidationError(f"Reranking sample {index} needs 'positive' or 'documents'.")
            if "relevance" in sample and len(sample["relevance"]) != len(sample.get("documents", [])):
                raise DataValidationError(
                    f"Reranking sample {index}: 'relevance' has {len(sample['relevance'])} grades for "
                    f"{len(sample.get('documents', []))} documents."
                )

    @property
    def primary_metric(self) -> str:
        return self._key(f"ndcg@{self.at_k}")

    def _key(self, metric: str) -> str:
        return f"{self.name}_{metric}" if self.name else metric

    def _candidates(self, sample: dict[str, Any]) -> tuple[list[str], list[float], list[float], bool]:
        """Documents to rerank, their grades, all grades (including unranked positives), and whether base applies."""
        if "relevance" in sample:
            grades = [float(g) for g in sample["relevance"]]
            return list(sample["documents"]), grades, grades, True
        positives = list(sample.get("positive", []))
        if "documents" not in sample:
            documents = positives + list(sample.get("negative", []))
            grades = [1.0] * len(positives) + [0.0] * (len(documents) - len(positives))
            return documents, grades, grades, False
        documents = list(sample["documents"])
        positive_set = set(positives)
        missing = [p for p in positives if p not in set(documents)]
        if self.always_rerank_positives:
            documents = documents + missing
            missing = []
        grades = [1.0 if doc in positive_set else 0.0 for doc in documents]
        return documents, grades, grades + [1.0] * len(missing), True

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        prepared = []
        pairs: list[tuple[str, str]] = []
        for sample in self.samples:
            documents, grades, all_grades, has_base = self._candidates(sample)
            if not any(g > 0 for g in all_grades) or not documents:
                continue
            prepared.append((len(pairs), len(documents), grades, all_grades, has_base))
            pairs.extend((sample["query"], doc) for doc in documents)
        if not prepared:
            raise DataValidationError(f"Reranking evaluator {self.name!r}: no sample has a relevant document.")

        scores = np.asarray(
            model.predict(pairs, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar),
            dtype=float,
        )
        if scores.ndim != 1:
            raise ValueError("CrossEncoderRerankingEvaluator needs a model with one output per pair.")
        model_rows, base_rows = [], []
        for start, count, grades, all_grades, has_base in prepared:
            order = np.argsort(-scores[start : start + count], kind="stable")
            model_rows.append(self._metrics([grades[i] for i in order], all_grades))
            if has_base:
                base_rows.append(self._metrics(grades, all_grades))

        metric_names = ["map", f"mrr@{self.at_k}", f"ndcg@{self.at_k}"]
        results = {self._key(m): float(np.mean([row[m] for row in model_rows])) for m in metric_names}
        if base_rows and len(base_rows) == len(model_rows):
            results.update(
                {self._key(f"base_{m}"): float(np.mean([row[m] for row in base_rows])) for m in metric_names}
            )
        logger.info("Reranking evaluation %s (%d queries): %s", self.name or "", len(model_rows), results)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, {"epoch": epoch, "steps": steps, **results})
        return results

    def _metrics(self, ranked_grades: list[float], all_grades: list[float]) -> dict[str, float]:
        num_relevant = sum(1 for g in all_grades if g > 0)
        return {
            "map": average_precision(ranked_grades, num_relevant),
            f"mrr@{self.at_k}": reciprocal_rank_at_k(ranked_grades, self.at_k),
            f"ndcg@{self.at_k}": ndcg_at_k(ranked_grades, self.at_k, all_grades),
        }

    def get_config_dict(self) -> dict[str, Any]:
        return {"at_k": self.at_k, "always_rerank_positives": self.always_rerank_positives}
