"""train.layerwise_lr_decay: the train stage hands it to the trainer, and lower layers then move less."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rerank_lib.errors import ConfigError
from tasks.config import TrainConfig, load_params
from tests.tasks.train_testkit import train_toy_model

ROOT = Path(__file__).resolve().parents[2]
EMBEDDINGS = "embeddings.word_embeddings.weight"


def _embedding_change(root: Path, base: Path, decay: float) -> float:
    out = train_toy_model(root, base, learning_rate=1e-2, layerwise_lr_decay=decay)
    before = next(t for name, t in load_file(base / "model.safetensors").items() if name.endswith(EMBEDDINGS))
    after = next(t for name, t in load_file(out / "model.safetensors").items() if name.endswith(EMBEDDINGS))
    return float((after - before).abs().max())


def test_the_default_trains_every_layer_at_the_same_rate() -> None:
    assert TrainConfig.model_fields["layerwise_lr_decay"].default == 1.0
    assert load_params(ROOT / "params.yaml").train.layerwise_lr_decay == 1.0


def test_a_small_decay_keeps_the_embeddings_of_the_base_model(tiny_bert_dir: Path, tmp_path: Path) -> None:
    full = _embedding_change(tmp_path / "full", tiny_bert_dir, 1.0)
    decayed = _embedding_change(tmp_path / "decayed", tiny_bert_dir, 0.01)
    assert full > 0
    assert decayed < 0.05 * full
    assert not torch.isnan(torch.tensor(decayed))


@pytest.mark.parametrize("decay", [0, 1.2])
def test_a_decay_outside_zero_to_one_is_rejected_with_its_key(decay: float) -> None:
    with pytest.raises(ConfigError, match="train.layerwise_lr_decay"):
        load_params(ROOT / "params.yaml", overrides={"train": {"layerwise_lr_decay": decay}})
