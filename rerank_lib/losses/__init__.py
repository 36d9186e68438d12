"""Ranking losses, one module per loss; each is built as ``Loss(model, **options)`` and called as
``loss(inputs, labels)`` with the batch's text columns in order."""

from rerank_lib.losses.adr_mse import ADRMSELoss
from rerank_lib.losses.binary_cross_entropy import BinaryCrossEntropyLoss
from rerank_lib.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from rerank_lib.losses.cross_entropy import CrossEntropyLoss
from rerank_lib.losses.lambda_loss import (
    BaseWeightingScheme,
    LambdaLoss,
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
)
from rerank_lib.losses.list_mle import ListMLELoss
from rerank_lib.losses.list_net import ListNetLoss
from rerank_lib.losses.margin_mse import MarginMSELoss
from rerank_lib.losses.mse import MSELoss
from rerank_lib.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from rerank_lib.losses.plist_mle import PListMLELambdaWeight, PListMLELoss
from rerank_lib.losses.rank_net import RankNetLoss

__all__ = [
    "ADRMSELoss",
    "BaseWeightingScheme",
    "BinaryCrossEntropyLoss",
    "CachedMultipleNegativesRankingLoss",
    "CrossEntropyLoss",
    "LambdaLoss",
    "LambdaRankScheme",
    "ListMLELoss",
    "ListNetLoss",
    "MSELoss",
    "MarginMSELoss",
    "MultipleNegativesRankingLoss",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
    "PListMLELambdaWeight",
    "PListMLELoss",
    "RankNetLoss",
]
