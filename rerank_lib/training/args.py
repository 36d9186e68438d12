"""Training arguments: transformers' TrainingArguments with defaults that suit text-pair datasets."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class CrossEncoderTrainingArguments(TrainingArguments):
    """``TrainingArguments`` for cross-encoders.

    Text columns are consumed by the loss, not by the model's ``forward``, so unused-column removal is off.
    """

    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: the loss reads the text columns, which Trainer would otherwise drop."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        # Text columns are read by the loss; dropping "unused" columns would drop the data itself.
        self.remove_unused_columns = False
