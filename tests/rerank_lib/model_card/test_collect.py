"""Collecting card data from real objects: datasets, losses, arguments, and a trained tiny model."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from datasets import Dataset

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from rerank_lib.losses import BinaryCrossEntropyLoss
from rerank_lib.model_card import render_model_card
from rerank_lib.model_card.collect import (
    card_data_from_model,
    card_data_from_trainer,
    column_stats,
    dataset_info,
    evaluation_info,
    hyperparameters_from_args,
    loss_info,
)

RELEVANT = ("what is the capital of france", "paris is the capital of france")
IRRELEVANT = ("what is the capital of france", "a dog eats food")


def toy_dataset(repeat: int = 8) -> Dataset:
    return Dataset.from_dict(
        {
            "query": [RELEVANT[0], IRRELEVANT[0]] * repeat,
            "passage": [RELEVANT[1], IRRELEVANT[1]] * repeat,
            "label": [1.0, 0.0] * repeat,
        }
    )


def test_column_stats_cover_strings_lists_and_numbers() -> None:
    rows = [
        {"q": "ab", "docs": ["x", "y", "z"], "label": 1, "score": 0.5},
        {"q": "abcd", "docs": ["x"], "label": 0, "score": 1.5},
    ]
    stats = column_stats(rows)
    assert (stats["q"].dtype, stats["q"].min, stats["q"].mean, stats["q"].max) == ("string", 2, 3, 4)
    assert stats["docs"].dtype == "list" and stats["docs"].describe() == (
        "min: 1 elements, mean: 2.00 elements, max: 3 elements"
    )
    assert stats["label"].dtype == "int" and stats["score"].dtype == "float"
    assert column_stats(rows * 600, max_rows=1000)["q"].rows == 1000  # at most 1,000 rows are read


def test_dataset_info_from_a_dataset() -> None:
    info = dataset_info("toy", toy_dataset(), hub_id="org/toy")
    assert (info.name, info.size, info.columns, info.hub_id) == ("toy", 16, ["query", "passage", "label"], "org/toy")
    assert len(info.examples) == 3 and info.examples[0]["passage"] == RELEVANT[1]
    assert info.column_stats["passage"].max == len(RELEVANT[1])


def test_dataset_info_reads_a_streaming_dataset_only_as_far_as_it_needs() -> None:
    read = []

    def rows():
        for index in range(10**6):
            read.append(index)
            yield {"query": f"q{index}", "docs": [f"d{j}" for j in range(12)], "dataset_name": "toy"}

    from datasets import IterableDataset

    info = dataset_info("stream", IterableDataset.from_generator(rows), split="eval", max_stats_rows=5)
    assert (info.size, info.split, info.columns) == (5, "eval", ["query", "docs"])  # hidden column left out
    assert len(read) < 100
    assert info.examples[0] == {"query": "q0", "docs": [f"d{j}" for j in range(10)]}  # long lists shortened
    assert info.column_stats["docs"].max == 12


def test_hyperparameters_split_non_defaults_and_never_keep_tokens(tmp_path: Path) -> None:
    args = CrossEncoderTrainingArguments(
        output_dir=str(tmp_path), learning_rate=1e-3, hub_token="hf_secret_value", report_to="none"
    )
    all_args, non_default = hyperparameters_from_args(args)
    assert all_args["learning_rate"] == 1e-3 and non_default["learning_rate"] == 1e-3
    assert "per_device_train_batch_size" in all_args and "per_device_train_batch_size" not in non_default
    assert not any("token" in key for key in all_args) and "output_dir" not in all_args
    assert "hf_secret_value" not in repr(all_args)


def test_minimal_card_of_an_untrained_model(tiny_model: CrossEncoder) -> None:
    card = card_data_from_model(tiny_model, "Tiny")
    assert card.base_model == ""  # a local folder is not a Hub id
    text = render_model_card(card)
    assert "base_model" not in yaml.safe_load(text.split("---\n")[1]) and "# Tiny" in text


def test_card_of_a_trained_tiny_model_has_its_real_logs_and_metrics(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    evaluator = CrossEncoderRerankingEvaluator(
        [
            {
                "query": RELEVANT[0],
                "positive": [RELEVANT[1]],
                "documents": [IRRELEVANT[1], "a big red car", RELEVANT[1]],
            }
        ],
        name="toy",
    )
    args = CrossEncoderTrainingArguments(
        output_dir=str(tmp_path / "checkpoints"),
        per_device_train_batch_size=4,
        learning_rate=2e-3,
        max_steps=6,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_toy_ndcg@10",
        report_to="none",
        use_cpu=True,
        seed=1,
        disable_tqdm=True,
    )
    loss = BinaryCrossEntropyLoss(tiny_model)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=toy_dataset(), loss=loss, evaluator=evaluator)
    trainer.train()
    results = evaluator(tiny_model)
    card = card_data_from_trainer(
        trainer, "Tiny reranker", evaluations=[evaluation_info(evaluator, results)], dataset_ids={"train": "org/toy"}
    )
    text = render_model_card(card, model_id="org/tiny-reranker")

    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 6
    for step, value in enumerate(losses, start=1):
        assert re.search(rf"\| (\*\*)?[0-9.]+(\*\*)? \| (\*\*)?{step}(\*\*)? \| (\*\*)?{value:.4f}(\*\*)? \|", text)
    evals = [row for row in trainer.state.log_history if "eval_toy_ndcg@10" in row]
    assert [row["step"] for row in evals] == [2, 4, 6]
    assert card.best_step == trainer.state.best_global_step in (2, 4, 6)
    best = card.best_step
    assert re.search(rf"\| \*\*[0-9.]+\*\* \| \*\*{best}\*\* \|", text)  # the best step's row is bold
    assert f"step of the saved checkpoint (step {best})" in text
    # final metrics with their first-stage baseline delta
    ndcg, base = results["toy_ndcg@10"], results["toy_base_ndcg@10"]
    assert f"**{ndcg:.4f} ({ndcg - base:+.4f})**" in text
    meta = yaml.safe_load(text.split("---\n")[1])
    index_metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert index_metrics["ndcg@10"] == results["toy_ndcg@10"]
    assert meta["datasets"] == ["org/toy"] and "dataset_size:16" in meta["tags"]
    assert "loss:BinaryCrossEntropyLoss" in meta["tags"]
    # real data, arguments and loss config
    assert f'("{RELEVANT[0]}", "{RELEVANT[1]}")' in text
    assert "| learning\\_rate | 0.002 |" in text and "| max\\_steps | 6 |" in text
    assert '"activation_fn": "torch.nn.modules.linear.Identity"' in text
    assert loss_info(loss).config == card.losses[0].config
    assert "\n\n\n" not in text


def test_saving_an_untrained_loaded_model_keeps_its_card(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    card = render_model_card(card_data_from_model(tiny_model, "Kept card"))
    tiny_model.save_pretrained(tmp_path / "a")
    (tmp_path / "a" / "README.md").write_text(card, encoding="utf-8")
    CrossEncoder(tmp_path / "a", device="cpu").save_pretrained(tmp_path / "b")
    assert (tmp_path / "b" / "README.md").read_text(encoding="utf-8") == card
