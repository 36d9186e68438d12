"""rerank_lib: train, evaluate and ship cross-encoder rerankers on top of transformers."""

__version__ = "0.1.0"

from rerank_lib.backends import export_dynamic_quantized_onnx_model  # noqa: E402
from rerank_lib.fusion import FusedReranker, load_reranker  # noqa: E402
from rerank_lib.model import CrossEncoder  # noqa: E402
from rerank_lib.training import CrossEncoderTrainer, CrossEncoderTrainingArguments  # noqa: E402

__all__ = [
    "CrossEncoder",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "FusedReranker",
    "__version__",
    "export_dynamic_quantized_onnx_model",
    "load_reranker",
]
