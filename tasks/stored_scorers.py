"""The zero-shot scorers beside every evaluation (BM25, the bi-encoder), with their scores kept on disk.

Their scores do not depend on the trained weights, so evaluate, the package stage and the tune stage read them from
the project's score store (:mod:`rerank_lib.score_store`, ``.cache/scores``) on every retraining after the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_lib.bi_encoder import BiEncoderScorer
from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.retrieval.bm25 import ANALYZER_NAME
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from rerank_lib.score_store import DiskCachedScorer, ScoreStore
from tasks.base_model import resolve_base_model
from tasks.layout import Layout


def project_store(root: str | Path) -> ScoreStore:
    """The project's score store."""
    return ScoreStore(Layout(Path(root)).score_cache)


def stored_bi_encoder(name: str | None, store: ScoreStore) -> CachedScorer | None:
    """The zero-shot bi-encoder ``name``, its scores cached per pair in the run and kept in ``store`` for the next."""
    if not name:
        return None
    encoder = BiEncoderScorer(resolve_base_model(name))
    identity = f"bi-encoder:{encoder.encoder.fingerprint()}:{encoder.encoder.max_length}"
    return CachedScorer(DiskCachedScorer(encoder, identity, store))


def stored_bm25(store: ScoreStore) -> Any:
    """BM25 over each evaluator's candidates, its scores kept in ``store`` like the bi-encoder's."""
    bm25 = BM25Scorer()
    return DiskCachedScorer(bm25, f"bm25-pool:{bm25.k1}:{bm25.b}:{ANALYZER_NAME}", store)
