"""Ranking losses, one module per loss; each is built as ``Loss(model, **options)``."""

from rerank_lib.losses.binary_cross_entropy import BinaryCrossEntropyLoss
from rerank_lib.losses.cross_entropy import CrossEntropyLoss

__all__ = ["BinaryCrossEntropyLoss", "CrossEntropyLoss"]
