"""Several datasets with a loss dict, streaming data, loss components, evaluators, best model, card data, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset, DatasetDict
from training_testkit import (
    RecordingLoss,
    TinyListwiseLoss,
    TwoPartLoss,
    flat_weights,
    make_args,
    varied_pairs,
)
from transformers import TrainingArguments

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.errors import ConfigError
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator, SequentialEvaluator
from rerank_lib.losses import BinaryCrossEntropyLoss


def reranking_evaluator(name: str) -> CrossEncoderRerankingEvaluator:
    samples = [
        {"query": "capital of france", "positive": ["paris is the capital of france"], "negative": ["a dog eats"]},
        {"query": "a cat sleeps", "positive": ["the cat sleeps"], "negative": ["big red bus", "rome italy"]},
    ]
    return CrossEncoderRerankingEvaluator(samples, name=name)


def test_dataset_dict_sends_each_dataset_to_its_own_loss(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    train = DatasetDict({"alpha": varied_pairs(8, 0, "alpha "), "beta": varied_pairs(8, 1, "beta ")})
    evaluation = DatasetDict({"alpha": varied_pairs(4, 2, "alpha "), "beta": varied_pairs(4, 3, "beta ")})
    losses = {"alpha": RecordingLoss(tiny_model), "beta": RecordingLoss(tiny_model)}
    args = make_args(tmp_path, max_steps=4, multi_dataset_batch_sampler="round_robin")
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=train, eval_dataset=evaluation, loss=losses)
    trainer.train()
    assert len(losses["alpha"].first_texts) == len(losses["beta"].first_texts) == 8  # round robin: 2 batches each
    assert all(text.startswith("alpha ") for text in losses["alpha"].first_texts)
    assert all(text.startswith("beta ") for text in losses["beta"].first_texts)
    metrics = trainer.evaluate()
    assert metrics["eval_alpha_loss"] > 0 and metrics["eval_beta_loss"] > 0 and "eval_loss" not in metrics
    collector = trainer.card_collector
    assert [(info.name, info.split) for info in collector.eval_datasets] == [("alpha", "eval"), ("beta", "eval")]
    # An eval dict given to evaluate() directly keeps its names too.
    assert set(trainer.evaluate({"beta": evaluation["beta"]})) >= {"eval_beta_loss"}


def test_every_configuration_error_names_what_is_wrong(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    args = make_args(tmp_path)
    train = DatasetDict({"alpha": varied_pairs(4), "beta": varied_pairs(4)})
    bce = BinaryCrossEntropyLoss(tiny_model)
    with pytest.raises(ConfigError, match=r"no loss for dataset\(s\) \['beta', 'gamma'\]; its keys are \['alpha'\]"):
        CrossEncoderTrainer(
            tiny_model, args=args, train_dataset=train, eval_dataset={"gamma": varied_pairs(2)}, loss={"alpha": bce}
        )
    with pytest.raises(ConfigError, match="so train_dataset must be a DatasetDict"):
        CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(4), loss={"alpha": bce})
    with pytest.raises(ConfigError, match="The loss dict is empty"):
        CrossEncoderTrainer(tiny_model, args=args, train_dataset=train, loss={})
    with pytest.raises(ConfigError, match="needs CrossEncoderTrainingArguments, got TrainingArguments"):
        CrossEncoderTrainer(tiny_model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True))
    with pytest.raises(ConfigError, match="evaluator must be an evaluator or a list"):
        CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(4), evaluator=42)
    with pytest.raises(ConfigError, match="loss must be a loss module or a function of the model; got str"):
        CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(4), loss="bce")
    with pytest.raises(ConfigError, match="give the loss as a function of the model"):
        CrossEncoderTrainer(model_init=lambda: tiny_model, args=args, train_dataset=varied_pairs(4), loss=bce)
    streams = {"alpha": varied_pairs(4).to_iterable_dataset(), "beta": varied_pairs(4).to_iterable_dataset()}
    with pytest.raises(
        ConfigError, match=r"the streaming datasets \['alpha', 'beta'\] have no size; set .*round_robin"
    ):
        CrossEncoderTrainer(tiny_model, args=args, train_dataset=streams)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=train, loss={"alpha": bce, "beta": bce})
    with pytest.raises(ConfigError, match=r"No loss for dataset 'gamma'; the loss dict has keys \['alpha', 'beta'\]"):
        trainer.evaluate({"gamma": varied_pairs(2)})


def test_streaming_train_and_eval_data(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    stream = varied_pairs(40).to_iterable_dataset(num_shards=2).shuffle(seed=0, buffer_size=8)
    args = make_args(tmp_path, max_steps=3)
    trainer = CrossEncoderTrainer(
        tiny_model, args=args, train_dataset=stream, eval_dataset=varied_pairs(6).to_iterable_dataset()
    )
    trainer.train()
    assert trainer.state.global_step == 3
    assert trainer.evaluate()["eval_loss"] > 0
    card = trainer.model_card_data
    assert card.datasets[0].size == 12  # the rows trained on: a stream has no length
    assert card.datasets[0].columns == ["query", "passage", "label"]


def test_loss_components_are_summed_and_each_logged(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    args = make_args(tmp_path, max_steps=2)
    trainer = CrossEncoderTrainer(
        tiny_model, args=args, train_dataset=varied_pairs(8), eval_dataset=varied_pairs(4), loss=TwoPartLoss
    )
    trainer.train()
    rows = [row for row in trainer.state.log_history if "loss" in row]
    assert len(rows) == 2
    for row in rows:
        assert row["loss"] == pytest.approx(row["loss_bce"] + row["loss_magnitude"], rel=1e-5)
        assert row["loss_magnitude"] > 0
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] == pytest.approx(metrics["eval_loss_bce"] + metrics["eval_loss_magnitude"], rel=1e-5)


def test_listwise_labels_reach_the_loss(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    data = Dataset.from_dict(
        {
            "query": ["capital of france", "a cat sleeps"] * 4,
            "docs": [["paris france", "a dog", "red car"], ["the cat sleeps", "rome"]] * 4,
            "labels": [[2, 0, 0], [1, 0]] * 4,
        }
    )
    args = make_args(tmp_path, max_steps=2, per_device_train_batch_size=2)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=data, loss=TinyListwiseLoss)
    trainer.train()
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in trainer.state.log_history if "loss" in row)


def test_evaluator_list_selects_and_restores_the_best_checkpoint(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    args = make_args(
        tmp_path,
        max_steps=3,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        metric_for_best_model="dev_mrr@10",
        load_best_model_at_end=True,
        learning_rate=5e-3,
    )
    evaluators = [reranking_evaluator("dev"), reranking_evaluator("other")]
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(12), evaluator=evaluators)
    assert isinstance(trainer.evaluator, SequentialEvaluator)
    trainer.train()
    evaluations = [row for row in trainer.state.log_history if "eval_dev_mrr@10" in row]
    assert [row["step"] for row in evaluations] == [1, 2, 3]
    assert all("eval_other_ndcg@10" in row for row in evaluations)
    best = max(evaluations, key=lambda row: row["eval_dev_mrr@10"])  # first best wins ties, as in transformers
    assert trainer.state.best_global_step == best["step"]
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    restored = CrossEncoder(trainer.state.best_model_checkpoint, device="cpu")
    assert torch.equal(flat_weights(tiny_model.model), flat_weights(restored.model))

    collector = trainer.card_collector
    assert collector.best_step == best["step"]
    card = trainer.model_card_data
    assert card.datasets[0].name == "train" and card.datasets[0].size == 12 and len(card.datasets[0].examples) == 3
    assert card.datasets[0].split == "train"
    assert card.losses[0].name == "BinaryCrossEntropyLoss" and "pos_weight" in card.losses[0].config
    assert {entry.dataset for entry in card.evaluations} == {"dev", "other"}
    assert card.evaluations[0].primary_metric and "mrr@10" in card.evaluations[0].metrics
    assert card.hyperparameters["metric_for_best_model"] == "dev_mrr@10"
    assert card.hyperparameters["learning_rate"] == 5e-3 and "weight_decay" not in card.hyperparameters
    assert collector.all_hyperparameters["weight_decay"] == 0.0
    assert card.log_history == trainer.state.log_history and card.training_seconds is not None
    stats = collector.column_stats["train"]
    assert stats["query"].dtype == "string" and stats["query"].unit == "characters"
    assert stats["label"].min == 0.0 and stats["label"].max == 1.0
    assert card.datasets[0].column_stats == stats  # the card's training-data table has them too


def test_evaluator_with_eval_dataset_dict_runs_once_per_evaluation(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    evaluation = DatasetDict({"alpha": varied_pairs(4, 2), "beta": varied_pairs(4, 3)})
    args = make_args(tmp_path, max_steps=2, eval_strategy="steps", eval_steps=2)
    evaluator = reranking_evaluator("dev")
    trainer = CrossEncoderTrainer(
        tiny_model, args=args, train_dataset=varied_pairs(8), eval_dataset=evaluation, evaluator=evaluator
    )
    trainer.train()
    rows = [row for row in trainer.state.log_history if any(key.startswith("eval_") for key in row)]
    assert sum("eval_dev_mrr@10" in row for row in rows) == 1
    assert any("eval_alpha_loss" in row for row in rows) and any("eval_beta_loss" in row for row in rows)


def test_accumulation_warmup_checkpointing_and_cpu_bf16(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    args = make_args(
        tmp_path,
        max_steps=3,
        gradient_accumulation_steps=2,
        per_device_train_batch_size=2,
        warmup_steps=2,
        activation_checkpointing=True,
        bf16=True,
    )
    before = flat_weights(tiny_model)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(12))
    trainer.train()
    assert tiny_model.model.is_activation_checkpointing
    rates = [row["learning_rate"] for row in trainer.state.log_history if "loss" in row]
    assert rates == pytest.approx([0.0, 5e-4, 1e-3])  # linear warmup over 2 steps (the rate before each update)
    assert not torch.equal(before, flat_weights(tiny_model))
    assert tiny_model.model.dtype == torch.float32  # autocast, not a cast of the weights


def test_save_model_keeps_the_checkpoints_beside_it(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    args = make_args(tmp_path, max_steps=2, save_strategy="steps", save_steps=1)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(8))
    trainer.train()
    trainer.save_model()
    output = Path(args.output_dir)
    assert (output / "checkpoint-1").is_dir() and (output / "checkpoint-2" / "optimizer.pt").is_file()
    reloaded = CrossEncoder(output, device="cpu")
    assert torch.equal(flat_weights(reloaded.model), flat_weights(tiny_model.model))
