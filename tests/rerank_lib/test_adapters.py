"""LoRA adapters on the CrossEncoder: the head trains, the folder reloads to equal scores, merges, resumes, pushes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch
from peft import LoraConfig
from transformers import (
    AutoModelForSequenceClassification,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from rerank_lib import CrossEncoder, CrossEncoderTrainer, load_reranker
from rerank_lib.adapters import save_merged
from rerank_lib.errors import ConfigError, ModelLoadError
from tests.rerank_lib.training.training_testkit import make_args, varied_pairs

PAIRS = [
    ("what is the capital of france", "paris is the capital of france"),
    ("where is berlin", "the cat sleeps"),
    ("who reads a book", "a woman reads a book in the train"),
    ("red car", "a small blue bus"),
]


def lora() -> LoraConfig:
    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"])


def adapted(tiny_bert_dir: Path) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder(tiny_bert_dir, device="cpu").add_adapter(lora())


def train(model: CrossEncoder, tmp_path: Path, **overrides) -> CrossEncoderTrainer:
    args = make_args(tmp_path, **{"max_steps": 4, "learning_rate": 5e-3, **overrides})
    trainer = CrossEncoderTrainer(model, args=args, train_dataset=varied_pairs(16))
    trainer.train()
    return trainer


def named(model: CrossEncoder) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.model.named_parameters()}


def test_the_random_head_trains_beside_the_adapter_and_the_base_stays_frozen(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    config = lora()
    model = CrossEncoder(tiny_bert_dir, device="cpu").add_adapter(config)
    assert config.modules_to_save is None  # the caller's config is not changed
    trainable = {name for name, p in model.model.named_parameters() if p.requires_grad}
    assert any("classifier" in name for name in trainable), trainable
    assert all("lora_" in name or "classifier" in name for name in trainable)
    before = named(model)
    train(model, tmp_path)
    after = named(model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any("classifier.modules_to_save" in name for name in changed)
    assert any("lora_B" in name for name in changed)
    assert all("lora_" in name or "modules_to_save" in name for name in changed), changed


def test_saved_adapter_folder_reloads_with_equal_scores(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = adapted(tiny_bert_dir)
    train(model, tmp_path)
    expected = model.predict(PAIRS)
    model.save_pretrained(tmp_path / "saved")
    files = {path.name for path in (tmp_path / "saved").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "tokenizer.json"} <= files
    assert "model.safetensors" not in files  # the frozen base is not copied
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["sentence_transformers"]["adapter"] is True
    assert config["architectures"] == ["BertForSequenceClassification"]
    torch.manual_seed(99)  # another random head at load: the saved one must replace it
    loaded = CrossEncoder(tmp_path / "saved", device="cpu")
    assert loaded.has_adapter
    assert abs(loaded.predict(PAIRS) - expected).max() < 1e-6
    assert abs(load_reranker(tmp_path / "saved", device="cpu").predict(PAIRS) - expected).max() < 1e-6


def test_merged_folder_is_a_plain_model_that_loads_without_peft(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = adapted(tiny_bert_dir)
    train(model, tmp_path)
    expected = model.predict(PAIRS)
    save_merged(model, tmp_path / "merged")
    assert not model.has_adapter
    merged = tmp_path / "merged"
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    features = CrossEncoder(merged, device="cpu").tokenize(PAIRS)
    with torch.no_grad():
        logits = plain(**features).logits.view(-1)
    assert abs(torch.sigmoid(logits).numpy() - expected).max() < 1e-5
    assert abs(CrossEncoder(merged / "adapter", device="cpu").predict(PAIRS) - expected).max() < 1e-6


class StopAfterSave(TrainerCallback):
    """A crash right after the first checkpoint is written."""

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        control.should_training_stop = True


def test_an_adapter_folder_exports_merged_to_onnx(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = adapted(tiny_bert_dir)
    train(model, tmp_path)
    model.save_pretrained(tmp_path / "saved")
    exported = CrossEncoder(tmp_path / "saved", device="cpu", backend="onnx")
    assert not exported.has_adapter and (tmp_path / "saved" / "onnx" / "model.onnx").is_file()
    assert abs(exported.predict(PAIRS) - model.predict(PAIRS)).max() < 1e-5


def test_an_interrupted_adapter_run_resumes_to_the_uninterrupted_weights(tiny_bert_dir: Path, tmp_path: Path) -> None:
    def run(output: Path, resume: str | None = None, stop: bool = False) -> CrossEncoder:
        torch.manual_seed(0 if resume is None else 5)  # resuming must overwrite the head and adapter init
        model = CrossEncoder(tiny_bert_dir, device="cpu").add_adapter(lora())
        args = make_args(output, max_steps=4, learning_rate=5e-3, save_strategy="steps", save_steps=2)
        callbacks = [StopAfterSave()] if stop else None
        CrossEncoderTrainer(model, args=args, train_dataset=varied_pairs(16), callbacks=callbacks).train(
            resume_from_checkpoint=resume
        )
        return model

    straight = run(tmp_path / "straight")
    run(tmp_path / "resumed", stop=True)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file()
    resumed = run(tmp_path / "resumed", resume=str(checkpoint))
    for name, value in named(straight).items():
        if "original_module" not in name:  # the head's frozen initial copy: unused once the trained copy exists
            torch.testing.assert_close(named(resumed)[name], value, atol=1e-6, rtol=0)
    assert abs(resumed.predict(PAIRS) - straight.predict(PAIRS)).max() < 1e-6


def test_adapter_folder_pushed_to_the_hub_loads_from_the_repo(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_lib.hub import RetryPolicy
    from tests.hub_server import isolated_hub

    token = "hf_TestTokenDoNotLeak0123456789abcdef"
    model = adapted(tiny_bert_dir)
    train(model, tmp_path)
    expected = model.predict(PAIRS)
    with isolated_hub(monkeypatch, tmp_path, token, set_endpoint=True) as hub:
        # huggingface_hub reads HF_ENDPOINT at import; transformers downloads through these constants
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        model.push_to_hub("org/lora", token=token, retry=RetryPolicy(attempts=2, base_delay=0.0))
        assert {"adapter_config.json", "adapter_model.safetensors", "config.json"} <= set(hub.files("org/lora"))
        loaded = CrossEncoder("org/lora", device="cpu", token=token)
    assert loaded.has_adapter and abs(loaded.predict(PAIRS) - expected).max() < 1e-6


def test_a_three_label_adapter_model_reloads_with_its_three_labels(tiny_bert_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, num_labels=3, device="cpu").add_adapter(lora())
    model.save_pretrained(tmp_path / "three")
    loaded = CrossEncoder(tmp_path / "three", device="cpu")
    assert loaded.num_labels == 3
    assert abs(loaded.predict(PAIRS) - model.predict(PAIRS)).max() < 1e-6


def test_adapter_errors_are_clear(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = adapted(tiny_bert_dir)
    with pytest.raises(ConfigError, match="already has an adapter"):
        model.add_adapter(lora())
    with pytest.raises(ConfigError, match="expects a peft config"):
        CrossEncoder(tiny_bert_dir, device="cpu").add_adapter({"r": 4})
    model.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (tmp_path / "saved" / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError):
        CrossEncoder(tmp_path / "saved", device="cpu")
    relocated = CrossEncoder(tmp_path / "saved", device="cpu", adapter_base_model=str(tiny_bert_dir))
    assert abs(relocated.predict(PAIRS) - model.predict(PAIRS)).max() < 1e-6
