"""Training: arguments, data collator, batch samplers, the Trainer subclass and the legacy ``fit``."""

from rerank_lib.training.args import CrossEncoderTrainingArguments
from rerank_lib.training.card_callback import ModelCardCallback
from rerank_lib.training.collator import CrossEncoderDataCollator
from rerank_lib.training.fit import InputExample
from rerank_lib.training.samplers import (
    BatchSamplers,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    LengthGroupedBatchSampler,
    MultiDatasetBatchSampler,
    MultiDatasetBatchSamplers,
    NoDuplicatesBatchSampler,
)
from rerank_lib.training.trainer import CrossEncoderTrainer

__all__ = [
    "BatchSamplers",
    "CrossEncoderDataCollator",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "InputExample",
    "LengthGroupedBatchSampler",
    "ModelCardCallback",
    "MultiDatasetBatchSampler",
    "MultiDatasetBatchSamplers",
    "NoDuplicatesBatchSampler",
]
