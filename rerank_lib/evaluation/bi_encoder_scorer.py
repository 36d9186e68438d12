"""A bi-encoder behind the ``predict(pairs)`` interface, so evaluators score the zero-shot baseline exactly as
they score a cross-encoder: same candidates, same metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rerank_lib.data.embeddings import BiEncoder


class BiEncoderScorer:
    """Cosine similarity of mean-pooled, normalised embeddings; each distinct text is embedded once."""

    num_labels = 1

    def __init__(self, encoder: BiEncoder | str, max_length: int = 256) -> None:
        self.encoder = encoder if isinstance(encoder, BiEncoder) else BiEncoder(encoder, max_length=max_length)

    def predict(
        self,
        sentences: Sequence[Sequence[str]],
        batch_size: int = 64,
        show_progress_bar: bool | None = None,
        **_: Any,
    ) -> np.ndarray:
        pairs = list(sentences)
        if not pairs:
            return np.empty(0, dtype=np.float32)
        texts = sorted({str(text) for pair in pairs for text in pair})
        index = {text: i for i, text in enumerate(texts)}
        vectors = self.encoder.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
        first = vectors[[index[str(a)] for a, _ in pairs]]
        second = vectors[[index[str(b)] for _, b in pairs]]
        return (first * second).sum(axis=1).astype(np.float32)
