"""Evaluators: each is called as ``evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]``.

Every evaluator has ``name``, ``primary_metric`` (a full result key), ``batch_size``, ``show_progress_bar``,
``get_config_dict()`` and appends one CSV row per call under ``output_path``. Metric conventions (ties, misses,
graded gains) are documented in :mod:`rerank_lib.evaluation.metrics`.
"""

from rerank_lib.evaluation.base import CrossEncoderEvaluator
from rerank_lib.evaluation.beir import CrossEncoderBEIREvaluator, load_beir
from rerank_lib.evaluation.bi_encoder_scorer import BiEncoderScorer
from rerank_lib.evaluation.bm25 import BM25, default_cache_dir, document_text, english_analyzer
from rerank_lib.evaluation.bm25_scorer import BM25Scorer
from rerank_lib.evaluation.classification import CrossEncoderClassificationEvaluator
from rerank_lib.evaluation.correlation import CrossEncoderCorrelationEvaluator
from rerank_lib.evaluation.csv_log import append_csv_row
from rerank_lib.evaluation.hybrid_scorer import HybridScorer
from rerank_lib.evaluation.metrics import (
    average_precision,
    binary_classification_metrics,
    correlation_metrics,
    multiclass_classification_metrics,
    ndcg_at_k,
    ranking_metrics,
    reciprocal_rank_at_k,
)
from rerank_lib.evaluation.porter import porter_stem
from rerank_lib.evaluation.reranking import CrossEncoderRerankingEvaluator
from rerank_lib.evaluation.sequential import SequentialEvaluator

__all__ = [
    "BM25",
    "BM25Scorer",
    "BiEncoderScorer",
    "CrossEncoderBEIREvaluator",
    "CrossEncoderClassificationEvaluator",
    "CrossEncoderCorrelationEvaluator",
    "CrossEncoderEvaluator",
    "CrossEncoderRerankingEvaluator",
    "HybridScorer",
    "SequentialEvaluator",
    "append_csv_row",
    "average_precision",
    "binary_classification_metrics",
    "correlation_metrics",
    "default_cache_dir",
    "document_text",
    "english_analyzer",
    "load_beir",
    "multiclass_classification_metrics",
    "ndcg_at_k",
    "porter_stem",
    "ranking_metrics",
    "reciprocal_rank_at_k",
]
