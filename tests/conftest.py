"""Shared fixtures: a tiny randomly initialised BERT built once per session, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from rerank_lib import CrossEncoder

WORDS = (
    "the a an of to in is was what who where when how why which capital city country river mountain "
    "paris france berlin germany rome italy london england cat dog animal sleeps runs eats food water "
    "big small red blue green man woman child person car bus train plane music song book reads "
    "question answer passage document relevant not yes no good bad"
).split()


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BertModel with a small word-level vocabulary, saved as a plain (non-classifier) model."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *WORDS,
        *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
    ]
    vocab += list("abcdefghijklmnopqrstuvwxyz0123456789.,?!")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-base"))


@pytest.fixture
def tiny_bert_copy(tiny_bert_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny BERT folder that a test may modify."""
    return Path(shutil.copytree(tiny_bert_dir, tmp_path / "tiny-bert"))


@pytest.fixture
def tiny_model(tiny_bert_dir: Path) -> CrossEncoder:
    """A fresh one-output CrossEncoder on the tiny BERT (new scoring head, seeded)."""
    torch.manual_seed(0)
    return CrossEncoder(tiny_bert_dir, device="cpu")


@pytest.fixture
def tiny_multilabel_model(tiny_bert_dir: Path) -> CrossEncoder:
    """A fresh three-output CrossEncoder on the tiny BERT."""
    torch.manual_seed(0)
    return CrossEncoder(tiny_bert_dir, num_labels=3, device="cpu")
