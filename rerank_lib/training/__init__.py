"""Training: arguments, data collator and the Trainer subclass."""

from rerank_lib.training.args import CrossEncoderTrainingArguments
from rerank_lib.training.collator import CrossEncoderDataCollator
from rerank_lib.training.trainer import CrossEncoderTrainer

__all__ = ["CrossEncoderDataCollator", "CrossEncoderTrainer", "CrossEncoderTrainingArguments"]
