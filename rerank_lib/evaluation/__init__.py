"""Evaluators: each is called as ``evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict``."""

from rerank_lib.evaluation.reranking import CrossEncoderRerankingEvaluator

__all__ = ["CrossEncoderRerankingEvaluator"]
