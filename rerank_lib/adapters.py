"""Adapters (LoRA and the other PEFT methods) on a CrossEncoder, with the scoring head trained and saved beside them.

A reranker built from a base model has a new, random scoring head. A PEFT adapter freezes everything it does not
target, so unless the head is listed in ``modules_to_save`` it stays random in training, and a folder holding only the
adapter weights reloads with another random head. :func:`add_adapter` therefore always adds the head (and any other
module created at load time) to ``modules_to_save``: it trains in full and is saved in the adapter file.

An adapter folder is the ``peft`` layout (``adapter_config.json``, ``adapter_model.safetensors``) plus the model's
``config.json`` (marked ``"adapter": true`` in its ``sentence_transformers`` section) and tokenizer, so
:class:`~rerank_lib.CrossEncoder` loads it on top of the base model the adapter names. :func:`save_merged` writes the
merged model as a plain folder (loadable without ``peft``, by any toolkit) with the adapter folder under ``adapter/``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from rerank_lib.model import CrossEncoder

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_SUBFOLDER = "adapter"
HEAD_NAMES = ("classifier", "score")  # the scoring head of transformers' *ForSequenceClassification models


def is_peft_model(model: nn.Module) -> bool:
    """Whether ``model`` is wrapped by peft (without importing peft when it is not)."""
    return type(model).__module__.startswith("peft.")


def base_model(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if is_peft_model(model) else model


def head_modules(model: nn.Module, new_parameters: set[str]) -> list[str]:
    """Modules that must train in full beside an adapter: the scoring head and any module created at load time."""
    names = [name for name in HEAD_NAMES if isinstance(getattr(model, name, None), nn.Module)]
    for parameter in sorted(new_parameters):
        module = parameter.rsplit(".", 1)[0]
        if module not in names:
            names.append(module)
    return names


def add_adapter(model: CrossEncoder, peft_config: Any) -> None:
    """Wrap ``model.model`` with the adapter of ``peft_config`` (a ``peft.PeftConfig``, e.g. ``LoraConfig``).

    The scoring head (and anything the model created at load) is added to ``modules_to_save``, so it trains and is
    saved with the adapter; the caller's config object is not changed.
    """
    import peft

    if is_peft_model(model.model):
        raise ConfigError("This CrossEncoder already has an adapter; merge it (merge_adapter()) before adding another.")
    if not isinstance(peft_config, peft.PeftConfig):
        raise ConfigError(
            f"add_adapter expects a peft config (e.g. peft.LoraConfig); got {type(peft_config).__name__}."
        )
    config = copy.deepcopy(peft_config)
    heads = head_modules(model.model, model.new_parameters)
    config.modules_to_save = list(dict.fromkeys([*(config.modules_to_save or []), *heads])) or None
    model.model = peft.get_peft_model(model.model, config)


def lora_config(r: int = 8, alpha: float = 16.0, dropout: float = 0.1, target_modules: list[str] | None = None) -> Any:
    """A ``peft.LoraConfig`` from the four settings params.yaml exposes (``train.adapter``)."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules)


def save_trained(model: CrossEncoder, path: str | os.PathLike) -> Path:
    """The folder a training run ships: merged (with ``adapter/`` beside it) for an adapter model, else as is."""
    if is_peft_model(model.model):
        return save_merged(model, path)
    model.save_pretrained(path)
    return Path(path)


def merge_adapter(model: CrossEncoder) -> None:
    """Fold the adapter into the base weights: ``model.model`` becomes a plain transformers model again."""
    if not is_peft_model(model.model):
        raise ConfigError("This CrossEncoder has no adapter to merge.")
    model.model = model.model.merge_and_unload()


def read_adapter_base(source: str, hub_kwargs: dict[str, Any]) -> str:
    """The base model an adapter folder (or Hub repo) was trained on, from its ``adapter_config.json``."""
    folder = Path(source)
    try:
        if folder.is_dir():
            path = folder / ADAPTER_CONFIG_FILE
        else:
            from huggingface_hub import hf_hub_download

            keys = ("revision", "cache_dir", "token", "local_files_only")
            path = Path(hf_hub_download(source, ADAPTER_CONFIG_FILE, **{k: hub_kwargs.get(k) for k in keys}))
        base = json.loads(path.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"{source} is marked as an adapter but its {ADAPTER_CONFIG_FILE} is unreadable: {error}"
        ) from error
    if not base:
        raise ModelLoadError(f"{source}/{ADAPTER_CONFIG_FILE} names no base model; pass adapter_base_model=.")
    return str(base)


def load_adapter(base: nn.Module, source: str, hub_kwargs: dict[str, Any]) -> nn.Module:
    """``base`` with the adapter (and its saved head) of ``source`` loaded on top, trainable."""
    from peft import PeftModel

    try:
        folder = source if Path(source).is_dir() else _hub_adapter_folder(source, hub_kwargs)
        return PeftModel.from_pretrained(base, folder, is_trainable=True)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Could not load the adapter in {source}: {error}") from error


def _hub_adapter_folder(repo_id: str, hub_kwargs: dict[str, Any]) -> str:
    """The adapter's two files fetched from the Hub into the local cache (the same cache transformers uses)."""
    from huggingface_hub import hf_hub_download

    keys = ("revision", "cache_dir", "token", "local_files_only")
    options = {key: hub_kwargs.get(key) for key in keys}
    hf_hub_download(repo_id, ADAPTER_WEIGHTS_FILE, **options)
    return str(Path(hf_hub_download(repo_id, ADAPTER_CONFIG_FILE, **options)).parent)


def load_adapter_weights(model: nn.Module, checkpoint: str | os.PathLike) -> None:
    """Restore the adapter (and head) weights of a checkpoint folder into the peft-wrapped ``model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = Path(checkpoint) / ADAPTER_WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"No {ADAPTER_WEIGHTS_FILE} in checkpoint {checkpoint}.")
    device = next(model.parameters()).device
    result = set_peft_model_state_dict(model, load_file(str(weights), device=str(device)))
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise RuntimeError(f"Checkpoint {checkpoint} does not match the adapter: unexpected {unexpected[:5]}.")


def save_merged(model: CrossEncoder, path: str | os.PathLike, keep_adapter: bool = True) -> Path:
    """Write the merged model to ``path`` as a plain folder, the adapter folder under ``path/adapter`` (if kept).

    The plain folder loads anywhere (transformers, sentence-transformers, the ONNX/OpenVINO backends) without
    ``peft``; the adapter folder keeps the small trainable part for stacking or further training. ``model`` is
    merged in place. The whole folder is replaced atomically.
    """
    if not is_peft_model(model.model):
        raise ConfigError("save_merged needs a CrossEncoder with an adapter; use save_pretrained otherwise.")

    def write(staging: Path) -> None:
        if keep_adapter:
            model.write_folder(staging / ADAPTER_SUBFOLDER)
        merge_adapter(model)
        model.write_folder(staging)

    target = Path(path)
    build_directory_atomic(target, write)
    return target
