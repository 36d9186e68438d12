"""The last layer computing the first token only: the model's logits and gradients, restored on exit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rerank_lib import CrossEncoder
from rerank_lib.training.first_token_last_layer import last_layer_first_token_only

PAIRS = [
    ("what is the capital of france", "paris is the capital city of france"),
    ("who reads the book", "a child reads a big red book in the bus"),
    ("", ""),
    ("where", " ".join(["the river runs to the mountain"] * 8)),
]


def _features(model: CrossEncoder, with_types: bool) -> dict[str, torch.Tensor]:
    features = model.tokenizer([q for q, _ in PAIRS], [d for _, d in PAIRS], padding=True, return_tensors="pt")
    assert int(features["attention_mask"].sum(dim=1).min()) < features["attention_mask"].shape[1]  # padded batch
    if not with_types:
        features.pop("token_type_ids")
    return dict(features)


def _logits_and_grads(model: CrossEncoder, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    model.model.zero_grad()
    logits = model.model(**features).logits
    (logits.squeeze(-1) * torch.arange(1.0, len(PAIRS) + 1)).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.mark.parametrize("with_types", [True, False])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_logits_and_gradients_are_the_models(tiny_bert_dir: Path, with_types: bool, attention: str) -> None:
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, device="cpu", model_kwargs={"attn_implementation": attention})
    model.model.eval()  # no dropout: both forwards are deterministic
    features = _features(model, with_types)
    expected_logits, expected_grads = _logits_and_grads(model, features)
    with last_layer_first_token_only(model) as active:
        assert active
        logits, grads = _logits_and_grads(model, features)
        hidden = model.model.bert(**features).last_hidden_state
    assert hidden.shape[1] == 1  # the last layer returned the first token alone
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=0)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_the_layer_is_restored_after_the_block_even_on_error(tiny_model: CrossEncoder) -> None:
    layer = tiny_model.model.bert.encoder.layer[-1]
    features = _features(tiny_model, with_types=True)
    with pytest.raises(RuntimeError, match="stop"), last_layer_first_token_only(tiny_model):
        assert "forward" in vars(layer)
        with last_layer_first_token_only(tiny_model) as nested:  # already active: nothing to patch or undo
            assert not nested
        assert "forward" in vars(layer)
        raise RuntimeError("stop")
    assert "forward" not in vars(layer)
    length = features["input_ids"].shape[1]
    assert tiny_model.model.bert(**features).last_hidden_state.shape[1] == length


def test_models_it_does_not_cover_are_left_alone(tiny_model: CrossEncoder) -> None:
    tiny_model.model.config.position_embedding_type = "relative_key"
    with last_layer_first_token_only(tiny_model) as active:
        assert not active
        assert "forward" not in vars(tiny_model.model.bert.encoder.layer[-1])
    with last_layer_first_token_only(nn.Linear(2, 1)) as active:
        assert not active


class _PatchSpyLoss(nn.Module):
    """BCE on pairs that records, at every call, whether the last layer was computing the first token only."""

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__()
        self.model = model
        self.patched: list[bool] = []

    def forward(self, inputs: list[list[str]], labels: torch.Tensor) -> torch.Tensor:
        self.patched.append("forward" in vars(self.model.model.bert.encoder.layer[-1]))
        features = self.model.tokenizer(inputs[0], inputs[1], padding=True, return_tensors="pt")
        logits = self.model(**features).squeeze(-1)
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.float())


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_training_steps_use_it_and_train_the_same_weights(
    tiny_bert_dir: Path, tmp_path: Path, gradient_checkpointing: bool
) -> None:
    from training_testkit import flat_weights, make_args, varied_pairs

    from rerank_lib import CrossEncoderTrainer

    results = {}
    for enabled in (True, False):
        torch.manual_seed(0)
        model = CrossEncoder(tiny_bert_dir, device="cpu")
        for module in model.model.modules():  # no dropout: the two runs must take the same steps
            if isinstance(module, nn.Dropout):
                module.p = 0.0
        loss = _PatchSpyLoss(model)
        args = make_args(
            tmp_path / str(enabled),
            last_layer_first_token_only=enabled,
            activation_checkpointing=gradient_checkpointing,
        )
        CrossEncoderTrainer(model, args=args, train_dataset=varied_pairs(16), loss=loss).train()
        assert loss.patched == [enabled] * 4
        assert "forward" not in vars(model.model.bert.encoder.layer[-1])  # restored after training
        results[enabled] = flat_weights(model.model)
    assert not torch.equal(results[True], flat_weights(CrossEncoder(tiny_bert_dir, device="cpu").model))
    torch.testing.assert_close(results[True], results[False], atol=1e-5, rtol=1e-4)


def test_a_lora_adapter_keeps_the_first_token_shortcut_with_the_same_logits_and_gradients(tiny_bert_dir: Path) -> None:
    from peft import LoraConfig

    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, device="cpu")
    model.add_adapter(LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value", "dense"]))
    for name, parameter in model.model.named_parameters():
        if "lora_B" in name:  # LoRA starts at zero; move it so the adapter takes part in the check
            torch.nn.init.normal_(parameter, std=0.1)
    model.model.eval()
    features = _features(model, with_types=True)
    expected_logits, expected_grads = _logits_and_grads(model, features)
    with last_layer_first_token_only(model) as active:
        assert active
        logits, grads = _logits_and_grads(model, features)
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-4)
    assert set(grads) == set(expected_grads) and any("lora_A" in name for name in grads)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4)
