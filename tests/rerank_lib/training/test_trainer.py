"""The trainer on the tiny model: it learns, checkpoints, resumes, and runs evaluators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from training_testkit import make_args as fast_args

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from rerank_lib.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

RELEVANT = ("what is the capital of france", "paris is the capital of france")
IRRELEVANT = ("what is the capital of france", "a dog eats food")


def toy_dataset(repeat: int = 16) -> Dataset:
    return Dataset.from_dict(
        {
            "query": [RELEVANT[0], IRRELEVANT[0]] * repeat,
            "passage": [RELEVANT[1], IRRELEVANT[1]] * repeat,
            "label": [1.0, 0.0] * repeat,
        }
    )


def make_args(tmp_path: Path, **overrides: Any) -> CrossEncoderTrainingArguments:
    """The testkit's fast arguments, trained for epochs over the toy data instead of a few steps."""
    options = {"per_device_train_batch_size": 8, "learning_rate": 2e-3, "max_steps": -1, "num_train_epochs": 6}
    return fast_args(tmp_path, **{**options, **overrides})


def test_training_separates_relevant_from_irrelevant(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    trainer = CrossEncoderTrainer(tiny_model, args=make_args(tmp_path), train_dataset=toy_dataset())
    assert isinstance(trainer.loss, BinaryCrossEntropyLoss)  # the default for one output
    trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert losses[-1] < losses[0]
    relevant, irrelevant = tiny_model.predict([RELEVANT, IRRELEVANT])
    assert relevant > irrelevant


def test_default_loss_for_several_labels(tiny_multilabel_model: CrossEncoder, tmp_path: Path) -> None:
    trainer = CrossEncoderTrainer(tiny_multilabel_model, args=make_args(tmp_path), train_dataset=toy_dataset(2))
    assert isinstance(trainer.loss, CrossEntropyLoss)


def test_checkpoints_are_model_folders_and_resume_restores_weights(tiny_bert_dir: Path, tmp_path: Path) -> None:
    args = make_args(tmp_path, save_strategy="steps", save_steps=4, max_steps=4, num_train_epochs=1)
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, device="cpu")
    CrossEncoderTrainer(model, args=args, train_dataset=toy_dataset()).train()
    checkpoint = tmp_path / "checkpoints" / "checkpoint-4"
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "optimizer.pt").is_file()
    reloaded = CrossEncoder(checkpoint)
    assert torch.allclose(torch.tensor(reloaded.predict([RELEVANT])), torch.tensor(model.predict([RELEVANT])))

    # Resuming with max_steps=4 again: the weights come from the checkpoint, no step is redone.
    torch.manual_seed(0)
    fresh = CrossEncoder(tiny_bert_dir, device="cpu")
    trainer = CrossEncoderTrainer(fresh, args=args, train_dataset=toy_dataset())
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert trainer.state.global_step == 4
    assert torch.allclose(torch.tensor(fresh.predict([RELEVANT])), torch.tensor(model.predict([RELEVANT])), atol=1e-6)


def test_evaluator_runs_at_evaluation_with_eval_prefix(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    evaluator = CrossEncoderRerankingEvaluator(
        [{"query": RELEVANT[0], "positive": [RELEVANT[1]], "negative": [IRRELEVANT[1], "a big red car"]}],
        name="toy",
    )
    args = make_args(tmp_path, eval_strategy="steps", eval_steps=2, max_steps=4)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=toy_dataset(), evaluator=evaluator)
    trainer.train()
    evaluations = [row for row in trainer.state.log_history if "eval_toy_ndcg@10" in row]
    assert [row["step"] for row in evaluations] == [2, 4]
    assert all(0.0 <= row["eval_toy_mrr@10"] <= 1.0 for row in evaluations)
    assert (tmp_path / "checkpoints" / "eval").is_dir()


def test_eval_dataset_gives_eval_loss(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    trainer = CrossEncoderTrainer(
        tiny_model, args=make_args(tmp_path), train_dataset=toy_dataset(), eval_dataset=toy_dataset(2)
    )
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] == pytest.approx(metrics["eval_loss"]) and metrics["eval_loss"] > 0
