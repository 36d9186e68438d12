"""Layer-wise learning-rate decay: the groups it builds, and what training with it does to each layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.errors import ConfigError
from rerank_lib.training.layer_lr import count_layers, layerwise_parameter_groups, parameter_depth
from tests.rerank_lib.training.training_testkit import make_args, varied_pairs

BERT_NAMES = [
    "model.bert.embeddings.word_embeddings.weight",
    "model.bert.encoder.layer.0.attention.self.query.weight",
    "model.bert.encoder.layer.1.output.dense.bias",
    "model.bert.pooler.dense.weight",
    "model.classifier.weight",
]


def test_depth_counts_down_from_the_head_to_the_embeddings() -> None:
    layers = count_layers(BERT_NAMES)
    assert layers == 2
    assert [parameter_depth(name, layers) for name in BERT_NAMES] == [3, 2, 1, 0, 0]


def test_groups_scale_the_rate_per_depth_and_keep_weight_decay_apart(tiny_model: CrossEncoder) -> None:
    names = [name for name, _ in tiny_model.named_parameters()]
    with_decay = [name for name in names if not name.endswith("bias") and "LayerNorm" not in name]
    groups = layerwise_parameter_groups(tiny_model, 1e-3, 0.5, 0.01, with_decay)
    by_parameter = {id(p): (group["lr"], group["weight_decay"]) for group in groups for p in group["params"]}
    parameters = dict(tiny_model.named_parameters())
    assert len(by_parameter) == len(parameters)  # every trainable parameter in exactly one group
    assert by_parameter[id(parameters["model.classifier.weight"])] == (1e-3, 0.01)
    assert by_parameter[id(parameters["model.bert.encoder.layer.1.output.dense.bias"])] == (5e-4, 0.0)
    assert by_parameter[id(parameters["model.bert.encoder.layer.0.output.dense.weight"])] == (2.5e-4, 0.01)
    assert by_parameter[id(parameters["model.bert.embeddings.word_embeddings.weight"])] == (1.25e-4, 0.01)


def test_frozen_parameters_are_left_out(tiny_model: CrossEncoder) -> None:
    tiny_model.model.bert.embeddings.requires_grad_(False)
    groups = layerwise_parameter_groups(tiny_model, 1e-3, 0.5, 0.0, [])
    grouped = {id(p) for group in groups for p in group["params"]}
    assert id(tiny_model.model.bert.embeddings.word_embeddings.weight) not in grouped


@pytest.mark.parametrize("decay", [0.0, 1.5, -0.1])
def test_a_decay_outside_zero_to_one_is_refused_by_name(decay: float, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="layerwise_lr_decay"):
        make_args(tmp_path, layerwise_lr_decay=decay)


def test_trainer_builds_the_groups_and_the_schedule_keeps_their_ratios(
    tiny_model: CrossEncoder, tmp_path: Path
) -> None:
    args = make_args(tmp_path, layerwise_lr_decay=0.5, warmup_steps=10, max_steps=4)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(16))
    trainer.train()
    rates = sorted({group["lr"] for group in trainer.optimizer.param_groups}, reverse=True)
    # head, layer 1, layer 0, embeddings: each half the one above, still so 4 steps into a 10-step warmup
    assert len(rates) == 4
    for upper, lower in zip(rates[:-1], rates[1:], strict=True):
        assert lower == pytest.approx(upper * 0.5)


def test_a_small_decay_leaves_the_embeddings_nearly_where_they_were(tiny_bert_dir: Path, tmp_path: Path) -> None:
    def embedding_change(decay: float) -> float:
        torch.manual_seed(0)
        model = CrossEncoder(tiny_bert_dir, device="cpu")
        before = model.model.bert.embeddings.word_embeddings.weight.detach().clone()
        args = make_args(tmp_path / str(decay), layerwise_lr_decay=decay, max_steps=6)
        CrossEncoderTrainer(model, args=args, train_dataset=varied_pairs(24)).train()
        return float((model.model.bert.embeddings.word_embeddings.weight.detach() - before).abs().max())

    assert embedding_change(0.01) < 0.05 * embedding_change(1.0)


def test_decay_with_a_supplied_optimizer_is_refused_before_training(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    args = make_args(tmp_path, layerwise_lr_decay=0.5)
    with pytest.raises(ConfigError, match="optimizer_cls_and_kwargs"):
        CrossEncoderTrainer(
            tiny_model,
            args=args,
            train_dataset=varied_pairs(8),
            optimizer_cls_and_kwargs=(torch.optim.SGD, {"lr": 0.1}),
        )
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="optimizers"):
        CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(8), optimizers=(optimizer, None))
