"""Evaluators: each is called as ``evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]``.

Every evaluator has ``name``, ``primary_metric`` (a full result key), ``batch_size``, ``show_progress_bar``,
``get_config_dict()`` and appends one CSV row per call under ``output_path``. The model is any
:class:`~rerank_lib.scorer.Scorer` (a cross-encoder, a baseline, a fused or cached scorer). Metric conventions
(ties, misses, graded gains) are documented in :mod:`rerank_lib.evaluation.metrics`.
"""

from rerank_lib.evaluation.base import CrossEncoderEvaluator
from rerank_lib.evaluation.beir import CrossEncoderBEIREvaluator
from rerank_lib.evaluation.classification import CrossEncoderClassificationEvaluator
from rerank_lib.evaluation.correlation import CrossEncoderCorrelationEvaluator
from rerank_lib.evaluation.csv_log import append_csv_row
from rerank_lib.evaluation.metrics import (
    average_precision,
    binary_classification_metrics,
    correlation_metrics,
    multiclass_classification_metrics,
    ndcg_at_k,
    ranking_metrics,
    reciprocal_rank_at_k,
)
from rerank_lib.evaluation.reranking import CrossEncoderRerankingEvaluator
from rerank_lib.evaluation.sequential import SequentialEvaluator

__all__ = [
    "CrossEncoderBEIREvaluator",
    "CrossEncoderClassificationEvaluator",
    "CrossEncoderCorrelationEvaluator",
    "CrossEncoderEvaluator",
    "CrossEncoderRerankingEvaluator",
    "SequentialEvaluator",
    "append_csv_row",
    "average_precision",
    "binary_classification_metrics",
    "correlation_metrics",
    "multiclass_classification_metrics",
    "ndcg_at_k",
    "ranking_metrics",
    "reciprocal_rank_at_k",
]
