"""Model cards rendered from data collected during training and evaluation."""

from rerank_lib.model_card.data import ColumnStats, DatasetInfo, EvaluationInfo, LossInfo, ModelCardData
from rerank_lib.model_card.render import render_model_card, set_usage_id, update_card_metadata

__all__ = [
    "ColumnStats",
    "DatasetInfo",
    "EvaluationInfo",
    "LossInfo",
    "ModelCardData",
    "render_model_card",
    "set_usage_id",
    "update_card_metadata",
]
