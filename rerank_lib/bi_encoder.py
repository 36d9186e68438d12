"""The bi-encoder beside the cross-encoder: mean pooling over the last hidden state (attention-masked), then L2
normalisation, and a scorer that ranks pairs by the cosine of their embeddings.

That is how all-MiniLM-L6-v2 and most sentence-embedding BERTs are used, so a plain ``BertModel`` folder serves. The
bi-encoder is the first stage of hard-negative mining, a zero-shot baseline, a distillation teacher and the prior of
a score fusion; :mod:`rerank_lib.embedding_cache` keeps its corpus embeddings on disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from rerank_lib.errors import ModelLoadError
from rerank_lib.model_files import check_model_folder, check_tokenizer_fits, damaged_weights_file, looks_local
from rerank_lib.scorer import PairScorer

logger = logging.getLogger(__name__)

POOLING = "mean-l2-v1"


@runtime_checkable
class Encoder(Protocol):
    """Anything that embeds texts as rows of unit vectors; ``fingerprint`` enables the on-disk cache."""

    def encode(
        self, texts: Sequence[str], batch_size: int = ..., show_progress_bar: bool | None = ...
    ) -> np.ndarray: ...


class BiEncoder:
    """Embed texts with a transformers encoder: masked mean pooling, then L2 normalisation.

    Args:
        model_name_or_path: a local model folder (or Hub id available offline).
        max_length: tokens per text; longer texts are truncated (all-MiniLM-L6-v2 was trained with 256).
        device: ``"cpu"``, ``"cuda"``...; default: CUDA when available.
    """

    def __init__(self, model_name_or_path: str | os.PathLike, max_length: int = 256, device: str | None = None):
        source = str(model_name_or_path)
        if looks_local(source):
            check_model_folder(Path(source).expanduser())  # a half-copied folder fails here, naming what is missing
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModel.from_pretrained(source)
        except Exception as error:  # tokenizers and safetensors raise their own types for damaged files
            weights = damaged_weights_file(source, error)
            what = f"the corrupted or truncated weights file {weights}" if weights else f"bi-encoder {source}"
            raise ModelLoadError(f"Cannot load {what}: {error}") from error
        check_tokenizer_fits(self.tokenizer, self.model.config, source)
        self._setup(str(model_name_or_path), max_length, device or ("cuda" if torch.cuda.is_available() else "cpu"))

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, max_length: int = 256, device: str | None = None) -> BiEncoder:
        """Wrap an already loaded transformers encoder and its tokenizer (nothing is read from disk)."""
        encoder = cls.__new__(cls)
        encoder.model, encoder.tokenizer = model, tokenizer
        encoder._setup(str(getattr(model.config, "name_or_path", "")), max_length, device)
        return encoder

    def _setup(self, name: str, max_length: int, device: str | None) -> None:
        if max_length <= 0:
            raise ValueError(f"max_length must be positive; got {max_length}.")
        positions = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(max_length, positions) if isinstance(positions, int) else max_length
        self.name = name
        if device is not None:  # a model passed in already loaded stays where its owner put it
            self.model.to(device)
        self.model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors, in input order."""
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO and len(texts) > batch_size
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="Embedding", disable=not show_progress_bar):
            index = order[start : start + batch_size]
            features = self.tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out[index] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
        return out

    def fingerprint(self) -> str:
        """SHA-256 of weights, config, tokenizer, pooling and max_length: changes whenever embeddings would.

        Recomputed on each call (a fraction of a second for MiniLM), so weights changed in place are never missed.
        """
        digest = hashlib.sha256()
        digest.update(json.dumps([POOLING, self.max_length]).encode())
        config = json.loads(self.model.config.to_json_string(use_diff=False))
        config.pop("_name_or_path", None)  # where the model was loaded from does not change its embeddings
        digest.update(json.dumps(config, sort_keys=True).encode())
        digest.update(_tokenizer_identity(self.tokenizer).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


def _tokenizer_identity(tokenizer: Any) -> str:
    """The tokenizer's vocabulary and rules, without the padding/truncation state that each call changes."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return json.dumps(sorted(tokenizer.get_vocab().items()))
    state = json.loads(backend.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return json.dumps(state, sort_keys=True)


def as_encoder(model: Any, max_length: int = 256, device: str | None = None) -> Any:
    """A :class:`BiEncoder` from a path, or ``model`` itself when it already encodes."""
    if isinstance(model, (str, os.PathLike)):
        return BiEncoder(model, max_length=max_length, device=device)
    if isinstance(model, Encoder):
        return model
    raise TypeError(f"Expected a model path or an object with encode(texts); got {type(model).__name__}.")


class BiEncoderScorer(PairScorer):
    """Cosine similarity of mean-pooled, normalised embeddings; each distinct text is embedded once.

    The zero-shot baseline is scored by the evaluators exactly as a cross-encoder is: same candidates, same metrics.
    """

    default_batch_size = 64

    def __init__(self, encoder: BiEncoder | str | os.PathLike, max_length: int = 256) -> None:
        self.encoder = encoder if isinstance(encoder, BiEncoder) else BiEncoder(encoder, max_length=max_length)

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        texts = sorted({text for pair in pairs for text in pair})
        index = {text: i for i, text in enumerate(texts)}
        vectors = self.encoder.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
        first = vectors[[index[query] for query, _ in pairs]]
        second = vectors[[index[document] for _, document in pairs]]
        return (first * second).sum(axis=1)
