"""Batched mining (blocks with a running top-k) equals a brute-force ranking, a Dataset comes back as a Dataset."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from rerank_lib.data import mine_hard_negatives
from rerank_lib.retrieval.bm25 import BM25
from tests.conftest import WORDS


class CoarseEncoder:
    """Small integer vectors: their products are exact in float32 whatever the summation order, and many tie,
    so the tie order (earlier corpus position first) is under test, across blocks and query batches."""

    def encode(self, texts, batch_size: int = 64, show_progress_bar: bool | None = None) -> np.ndarray:
        return np.array([[zlib.crc32(f"{t}:{i}".encode()) % 3 for i in range(4)] for t in texts], dtype=np.float32)


rng = random.Random(3)
CORPUS = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(120)]
QUERIES = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(25)]
FRAME = pd.DataFrame({"query": QUERIES + QUERIES[:5], "positive": [CORPUS[i * 4] for i in range(30)]})


def brute_force(method: str, query_index: int) -> list[str]:
    """Every corpus text by score for one query, positives of that query left out, ties in corpus order."""
    texts = list(dict.fromkeys(CORPUS + FRAME["positive"].tolist()))
    query = QUERIES[query_index]
    scores = np.zeros(len(texts))
    if method in ("bi-encoder", "both"):
        encoder = CoarseEncoder()
        cosine = (encoder.encode(texts) @ encoder.encode([query])[0]).astype(np.float64)
        scores = cosine if method == "bi-encoder" else 0.5 * (cosine + 1) / 2
    if method in ("bm25", "both"):
        lexical = BM25().fit({str(i): t for i, t in enumerate(texts)}).get_scores(query)
        if method == "bm25":
            scores = lexical
        else:
            scores = scores + 0.5 * (lexical / lexical.max() if lexical.max() > 0 else lexical * 0)
    known = set(FRAME.loc[FRAME["query"] == query, "positive"]) | {query}
    order = np.lexsort((np.arange(len(texts)), -scores))
    return [texts[i] for i in order if texts[i] not in known]


@pytest.mark.parametrize("method", ["bi-encoder", "bm25", "both"])
def test_blocks_and_query_batches_give_the_brute_force_ranking(method: str) -> None:
    mined = mine_hard_negatives(
        FRAME,
        CoarseEncoder() if method != "bm25" else None,
        corpus=CORPUS,
        method=method,
        num_negatives=12,
        range_max=12,
        output_format="n-tuple",
        use_cache=False,
        query_batch_size=4,  # 7 batches of queries
        corpus_block_size=9,  # 14 blocks, most cut inside a tie
    )
    for row in mined.itertuples(index=False):
        query_index = QUERIES.index(row[0])
        assert list(row[2:]) == brute_force(method, query_index)[:12], (method, row[0])


def test_faiss_flat_index_finds_the_exact_candidates() -> None:
    class DistinctEncoder:
        def encode(self, texts, batch_size: int = 64, show_progress_bar: bool | None = None) -> np.ndarray:
            vectors = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=16) for t in texts])
            return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    options = {"corpus": CORPUS, "num_negatives": 5, "range_max": 5, "output_format": "n-tuple", "use_cache": False}
    exact = mine_hard_negatives(FRAME, DistinctEncoder(), include_scores=True, **options)
    indexed = mine_hard_negatives(FRAME, DistinctEncoder(), include_scores=True, faiss_index="Flat", **options)
    pd.testing.assert_frame_equal(exact.drop(columns="scores"), indexed.drop(columns="scores"))
    np.testing.assert_allclose(np.stack(exact["scores"]), np.stack(indexed["scores"]), atol=1e-5)
    with pytest.raises(ValueError, match="faiss_index searches bi-encoder embeddings"):
        mine_hard_negatives(FRAME, corpus=CORPUS, method="bm25", faiss_index="Flat")


def test_a_dataset_in_gives_a_dataset_out() -> None:
    mined = mine_hard_negatives(Dataset.from_pandas(FRAME), corpus=CORPUS, method="bm25", use_cache=False)
    assert isinstance(mined, Dataset)
    assert mined.column_names == ["query", "positive", "negative"] and len(mined) > 0
    as_frame = mine_hard_negatives(FRAME, corpus=CORPUS, method="bm25", use_cache=False)
    assert isinstance(as_frame, pd.DataFrame) and as_frame.to_dict("list") == mined.to_dict()
