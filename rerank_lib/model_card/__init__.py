"""Model cards rendered from data collected during training and evaluation."""

from rerank_lib.model_card.data import DatasetInfo, EvaluationInfo, LossInfo, ModelCardData
from rerank_lib.model_card.render import render_model_card

__all__ = ["DatasetInfo", "EvaluationInfo", "LossInfo", "ModelCardData", "render_model_card"]
