"""Shared fixtures: a tiny randomly initialised BERT built once per session, copied per test.

The suite runs in two pytest-xdist workers (``-n 2``): many end-to-end tests mostly wait (for a server, a cron
minute, a subprocess), so a second worker uses that time. Test files that share an expensive session-wide build
(:data:`SHARED_BUILDS`) go to one worker together, first, so the build happens once; every other test is scheduled
on its own, as ``--dist load`` would. (xdist's own ``loadgroup`` marks do not group under pytest 9: the worker's
node-id suffix they rely on no longer reaches the scheduler.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from rerank_lib import CrossEncoder

# Test files that share one session-wide build, by the name of that build: one xdist worker runs them all.
SHARED_BUILDS: dict[str, tuple[str, ...]] = {
    "shared-dvc-project": (  # tests/dvc_support.py: the quick profile's `dvc repro`, killed and resumed
        "tests/test_dvc_resume.py",
        "tests/test_dvc_remote.py",
        "tests/test_dvc_metrics_plots.py",
        "tests/flows/test_dvc_record.py",
    ),
    "backend-exports": ("tests/rerank_lib/backends/",),  # its conftest's ONNX and OpenVINO exports
}


def shared_build_of(nodeid: str) -> str | None:
    """The shared build a test's file belongs to, if any."""
    path = nodeid.split("::", 1)[0]
    return next((name for name, files in SHARED_BUILDS.items() if path.startswith(files)), None)


@pytest.hookimpl(optionalhook=True)  # `pytest -p no:xdist` runs the suite serially without this hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Load scheduling in which each shared build's files form one unit of work (sent first: the largest units)."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedBuildScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_build_of(nodeid) or nodeid

    return SharedBuildScheduling(config, log)


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


CAUSAL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
TEMPLATE_WORDS = (
    "judge whether document meets requirements based on query and instruct provided note that can only be or "
    'system user assistant given web search retrieve passages answer < > : " .'
).split()
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_causal_lm(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide Qwen3ForCausalLM (the Qwen3-Reranker architecture) with a word-level tokenizer.

    The vocabulary has "yes" and "no" (the answer tokens), the Qwen chat markers as special tokens and the words of
    the Qwen3-Reranker template; a small chat template renders system/user turns the Qwen way.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    words = dict.fromkeys(WORDS + TEMPLATE_WORDS)
    vocab = ["[UNK]", *CAUSAL_SPECIALS, *words, *"abcdefghijklmnopqrstuvwxyz0123456789,?!"]
    backend = Tokenizer(models.WordLevel({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        extra_special_tokens=CAUSAL_SPECIALS,
        model_max_length=256,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    Qwen3ForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_causal_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))


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
