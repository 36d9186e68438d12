"""The old ``CrossEncoder.fit(train_dataloader, ...)`` API on the trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from training_testkit import flat_weights

from rerank_lib import CrossEncoder
from rerank_lib.errors import ConfigError, DataValidationError
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from rerank_lib.training import InputExample

RELEVANT = ("what is the capital of france", "paris is the capital of france")
IRRELEVANT = ("what is the capital of france", "a dog eats food")


def examples(repeat: int = 8) -> list[InputExample]:
    return [InputExample(texts=list(RELEVANT), label=1.0), InputExample(texts=list(IRRELEVANT), label=0.0)] * repeat


def test_fit_trains_evaluates_and_saves_the_best_model(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    evaluator = CrossEncoderRerankingEvaluator(
        [{"query": RELEVANT[0], "positive": [RELEVANT[1]], "negative": [IRRELEVANT[1], "a big red car"]}], name="toy"
    )
    scores: list[tuple[float, float, int]] = []
    tiny_model.fit(
        DataLoader(examples(), shuffle=True, batch_size=4),
        evaluator=evaluator,
        epochs=3,
        warmup_steps=2,
        optimizer_params={"lr": 2e-3},
        evaluation_steps=4,
        output_path=str(tmp_path / "best"),
        callback=lambda score, epoch, steps: scores.append((score, epoch, steps)),
        show_progress_bar=False,
    )
    assert [steps for _, _, steps in scores] == [4, 8, 12]
    relevant, irrelevant = tiny_model.predict([RELEVANT, IRRELEVANT])
    assert relevant > irrelevant
    assert (tmp_path / "best" / "model.safetensors").is_file()


def test_fit_with_a_logits_loss_and_an_unshuffled_loader(tiny_multilabel_model: CrossEncoder, tmp_path: Path) -> None:
    data = [InputExample(texts=["a man sleeps", "a person rests"], label=i % 3) for i in range(6)]
    before = flat_weights(tiny_multilabel_model)
    output = tiny_multilabel_model.fit(
        DataLoader(data, batch_size=3), loss_fct=nn.CrossEntropyLoss(), output_path=str(tmp_path / "out")
    )
    assert output.global_step == 2
    assert not torch.equal(before, flat_weights(tiny_multilabel_model))
    assert (tmp_path / "out" / "config.json").is_file()


def test_fit_errors(tiny_model: CrossEncoder) -> None:
    with pytest.raises(DataValidationError, match="example 0 has texts"):
        tiny_model.fit(DataLoader([InputExample(texts=["only one"], label=1)], batch_size=1))
    with pytest.raises(ConfigError, match="unknown scheduler 'WarmupSomething'"):
        tiny_model.fit(DataLoader(examples(1), batch_size=1), scheduler="WarmupSomething")
