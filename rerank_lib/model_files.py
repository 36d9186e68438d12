"""Checks that a model folder is whole before it is used: a half-copied folder must fail, never score garbage.

transformers is lenient with local folders: without tokenizer files it builds an empty five-token tokenizer that
maps every word to ``[UNK]``, and the model then scores every pair alike with no error at all. A damaged JSON file
surfaces as a bare ``JSONDecodeError`` from deep inside. These checks run before and right after the load and
raise :class:`~rerank_lib.errors.ModelLoadError` naming the folder and the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rerank_lib.errors import ModelLoadError

# Any one of these holds a tokenizer's vocabulary (fast tokenizers, WordPiece, BPE, SentencePiece).
VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)
JSON_FILES = ("config.json", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",  # a LoRA adapter with its head (the base model's weights live elsewhere)
    "adapter_model.bin",
)
# A vocabulary much smaller than the embedding table is not this model's tokenizer (tables are often padded up).
MIN_VOCABULARY_SHARE = 0.5


def looks_local(source: str | os.PathLike) -> bool:
    """Whether ``source`` names a path on this machine rather than a Hub id (``name`` or ``namespace/name``).

    An absolute or ``./``-relative path, a ``~`` path, more than one ``/``, or a first part that is an existing
    local folder (``artifacts/model``) all mean a local path.
    """
    text = str(source)
    if text.startswith(("/", "./", "../", "~", ".\\")) or os.sep != "/" and os.sep in text:
        return True
    parts = text.split("/")
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir()) or Path(text).exists()


def check_model_folder(folder: Path, need_tokenizer: bool = True) -> None:
    """A local model folder exists and holds a config, readable JSON files, weights and (optionally) a vocabulary."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelLoadError(f"No such model folder: {folder}.")
    if not folder.is_dir():
        raise ModelLoadError(f"Model path {folder} is a file; expected a model folder.")
    if not (folder / "config.json").is_file():
        if (folder / "rerank_package.json").is_file():
            raise ModelLoadError(
                f"{folder} is a rerank package (a cross-encoder and a first stage, scored together): load it with "
                "rerank_lib.load_reranker; its cross-encoder alone, which scores without the first stage, is in "
                "cross_encoder/"
            )
        raise ModelLoadError(f"Model folder {folder} has no config.json; is it a saved model?")
    for name in JSON_FILES:
        read_json_file(folder / name, optional=True)
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(f"Model folder {folder} has no weights file (expected one of {list(WEIGHT_FILES)}).")
    if need_tokenizer and not any((folder / name).is_file() for name in VOCABULARY_FILES):
        raise ModelLoadError(
            f"Model folder {folder} has no tokenizer files (expected one of {list(VOCABULARY_FILES)}); "
            "copy them from the model it was saved from."
        )


def read_json_file(path: Path, optional: bool = False) -> Any:
    """A JSON file's content, or a ModelLoadError naming the file when it is missing (unless optional) or damaged."""
    if not path.is_file():
        if optional:
            return None
        raise ModelLoadError(f"{path} is missing.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelLoadError(f"{path} is not valid JSON (damaged or truncated?): {error}") from error


def check_tokenizer_fits(tokenizer: Any, config: Any, source: str) -> None:
    """The tokenizer's vocabulary fits the model's embedding table: no id past its end, not a stranger's vocabulary."""
    vocab_size = getattr(config, "vocab_size", None)
    if not isinstance(vocab_size, int) or vocab_size <= 0:
        return
    size = len(tokenizer)
    if size > vocab_size or size < MIN_VOCABULARY_SHARE * vocab_size:
        raise ModelLoadError(
            f"The tokenizer of {source} has {size} tokens but the model's vocab_size is {vocab_size}: the tokenizer "
            "files are missing, damaged or from another model."
        )


def damaged_weights_file(source: str | os.PathLike, error: BaseException) -> Path | None:
    """The local weights file that ``error`` (raised while loading ``source``) points at, when it is one."""
    text = f"{type(error).__name__}: {error}"
    if not any(word in text for word in ("safetensors", "Safetensor", "deserializ", "HeaderTooLarge")):
        return None
    weights = Path(source) / "model.safetensors"
    return weights if weights.is_file() else None
