"""rerank_lib: train, evaluate and ship cross-encoder rerankers on top of transformers."""

from rerank_lib.backends import export_dynamic_quantized_onnx_model
from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.fusion import FusedReranker
from rerank_lib.mixed_scorer import MixedScorer, Normalization
from rerank_lib.model import CrossEncoder
from rerank_lib.package import RerankPackage, load_reranker
from rerank_lib.scorer import Scorer
from rerank_lib.training import CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.version import __version__

__all__ = [
    "BiEncoder",
    "BiEncoderScorer",
    "CachedScorer",
    "CrossEncoder",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "FusedReranker",
    "MixedScorer",
    "Normalization",
    "RerankPackage",
    "Scorer",
    "__version__",
    "export_dynamic_quantized_onnx_model",
    "load_reranker",
]
