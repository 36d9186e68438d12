"""Hard-negative mining with BM25 and the tiny BERT: positives excluded, window and margin respected, seeded."""

from __future__ import annotations

import shutil

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rerank_lib.bi_encoder import BiEncoder
from rerank_lib.data import mine_hard_negatives
from rerank_lib.embedding_cache import embed_corpus
from rerank_lib.retrieval import BM25
from tests.conftest import WORDS

_rng = random.Random(0)
QUERIES = ["capital city of france", "river in germany", "cat eats food", "big red bus", "who reads a book"]
POSITIVES = [
    "paris is the capital city of france",
    "paris the capital of france",
    "the river in germany",
    "the cat eats food",
    "a big red bus",
    "the child reads a book",
]
NEAR_DUPLICATES = [f"{positive} water" for positive in POSITIVES]  # score close to the positive: likely false negatives
CORPUS = NEAR_DUPLICATES + [" ".join(_rng.choice(WORDS) for _ in range(8)) for _ in range(40)]
DATASET = pd.DataFrame(
    {"query": [QUERIES[0], QUERIES[0], QUERIES[1], QUERIES[2], QUERIES[3], QUERIES[4]], "positive": POSITIVES}
)
KNOWN = {QUERIES[0]: set(POSITIVES[:2]), **{QUERIES[i - 1]: {POSITIVES[i]} for i in range(2, 6)}}


def mine(**kwargs) -> pd.DataFrame:
    options = {"corpus": CORPUS, "method": "bm25", "use_cache": False, "show_progress_bar": False} | kwargs
    return mine_hard_negatives(DATASET, **options)


def bm25_ranking(query: str) -> list[str]:
    """Corpus texts by BM25 score, best first, without the query's known positives (ties: corpus order)."""
    texts = list(dict.fromkeys(CORPUS + POSITIVES))
    scores = BM25().fit({str(i): text for i, text in enumerate(texts)}).get_scores(query)
    order = np.lexsort((np.arange(len(texts)), -scores))
    return [texts[i] for i in order if texts[i] not in KNOWN[query]]


def test_negatives_are_never_known_positives_and_follow_the_window() -> None:
    triplets = mine(num_negatives=2, range_min=3, range_max=10)
    assert list(triplets.columns) == ["query", "positive", "negative"]
    for row in triplets.itertuples():
        assert row.negative not in KNOWN[row.query]
    for query in QUERIES:
        mined = triplets[triplets["query"] == query]["negative"].drop_duplicates().tolist()
        assert mined == bm25_ranking(query)[3:5]


def test_random_sampling_is_seeded_and_stays_in_window() -> None:
    first = mine(num_negatives=3, range_max=12, sampling="random", seed=7, output_format="n-tuple")
    again = mine(num_negatives=3, range_max=12, sampling="random", seed=7, output_format="n-tuple")
    other = mine(num_negatives=3, range_max=12, sampling="random", seed=8, output_format="n-tuple")
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    for row in first.itertuples(index=False):
        window = bm25_ranking(row.query)[:12]
        assert {row.negative_1, row.negative_2, row.negative_3} <= set(window)


@pytest.mark.parametrize(("margin", "margin_type"), [(0.5, "absolute"), (0.3, "relative")])
def test_margin_to_the_positive_score(margin: float, margin_type: str) -> None:
    mined = mine(num_negatives=5, margin=margin, margin_type=margin_type, include_scores=True)
    assert len(mined) > 0
    for scores in mined["scores"]:
        positive, negative = scores
        limit = positive - margin if margin_type == "absolute" else positive * (1 - margin)
        assert negative <= limit + 1e-9
    unfiltered = mine(num_negatives=5)
    for positive, near in zip(POSITIVES, NEAR_DUPLICATES, strict=True):
        assert near in set(unfiltered[unfiltered["positive"] == positive]["negative"])
        assert near not in set(mined[mined["positive"] == positive]["negative"])


def test_output_formats_and_stats() -> None:
    tuples = mine(num_negatives=2, output_format="n-tuple")
    assert list(tuples.columns) == ["query", "positive", "negative_1", "negative_2"] and len(tuples) == 6
    pairs = mine(num_negatives=2, output_format="labeled-pair")
    assert pairs["label"].tolist()[:3] == [1.0, 0.0, 0.0] and len(pairs) == 18
    lists = mine(num_negatives=2, output_format="listwise")
    assert list(lists.columns) == ["query", "documents", "labels"]
    for docs, labels in zip(lists["documents"], lists["labels"], strict=True):
        assert len(docs) == 3 and labels[1] >= labels[2]
    assert lists["documents"].tolist()[0][0] == POSITIVES[0]
    binary = mine(num_negatives=2, output_format="listwise", list_labels="binary")
    assert binary["labels"].tolist()[0] == [1.0, 0.0, 0.0]
    assert tuples.attrs["mining"]["rows"] == 6 and tuples.attrs["mining"]["negatives"] == 12
    too_many = mine(num_negatives=60, range_max=100, output_format="n-tuple")
    assert len(too_many) == 0 and too_many.attrs["mining"]["rows_dropped"] == 6


def test_labelled_pairs_input_uses_positive_rows_and_default_corpus() -> None:
    pairs = pd.DataFrame({"query": ["q a", "q a", "q b"], "document": ["cat", "dog", "bus"], "label": [1, 0, 1]})
    mined = mine_hard_negatives(pairs, method="bm25", use_cache=False, num_negatives=1, range_max=5)
    assert mined["positive"].tolist() == ["cat", "bus"]
    assert set(mined["negative"]) <= {"bus", "cat"}  # only positives form the default corpus


def test_bi_encoder_from_path_with_disk_cache(tiny_bert_dir: Path, tmp_path: Path) -> None:
    first = mine(model=tiny_bert_dir, method="bi-encoder", num_negatives=2, use_cache=True, cache_dir=tmp_path)
    cached = list((tmp_path / "embeddings").glob("*.npy"))
    assert len(cached) == 1
    second = mine(model=tiny_bert_dir, method="bi-encoder", num_negatives=2, use_cache=True, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, second)
    for row in first.itertuples():
        assert row.negative not in KNOWN[row.query]


def test_loaded_bi_encoder_embeddings_are_normalised_and_cache_is_reused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    encoder = BiEncoder(tiny_bert_dir, device="cpu")
    vectors = embed_corpus(encoder, CORPUS[:5], cache_dir=tmp_path)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    calls = []
    original = encoder.encode
    encoder.encode = lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw)  # type: ignore[method-assign]
    assert np.array_equal(embed_corpus(encoder, CORPUS[:5], cache_dir=tmp_path), vectors)
    assert calls == []  # served from the cache, keyed by model fingerprint and corpus hash
    embed_corpus(encoder, CORPUS[:6], cache_dir=tmp_path)
    assert calls == [6] and len(list(tmp_path.glob("*.npy"))) == 2
    loaded = BiEncoder.from_model(encoder.model, encoder.tokenizer)
    assert loaded.fingerprint() == encoder.fingerprint()  # tokenizer calls do not change the key
    copy = Path(shutil.copytree(tiny_bert_dir, tmp_path / "copy"))
    assert BiEncoder(copy, device="cpu").fingerprint() == encoder.fingerprint()  # nor does the folder's path
    before = encoder.fingerprint()
    with torch.no_grad():
        encoder.model.embeddings.word_embeddings.weight[5, 0] += 1.0
    assert encoder.fingerprint() != before  # changed weights: a new cache entry, never stale embeddings
    both = mine(model=loaded, method="both", num_negatives=2, range_max=8)
    for row in both.itertuples():
        assert row.negative not in KNOWN[row.query]


def test_cross_encoder_rescoring_gives_its_scores(tiny_model) -> None:
    lists = mine(num_negatives=2, range_max=6, output_format="listwise", cross_encoder=tiny_model)
    for query, docs, labels in zip(lists["query"], lists["documents"], lists["labels"], strict=True):
        expected = tiny_model.predict([(query, doc) for doc in docs], show_progress_bar=False)
        assert np.allclose(labels, expected, atol=1e-5)
        assert labels[1] >= labels[2]  # negatives re-sorted by the cross-encoder, best first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "bi-encoder"}, "needs a bi-encoder model"),
        ({"range_min": 5, "range_max": 5}, "range_min < range_max"),
        ({"margin": 1.5, "margin_type": "relative"}, "margin must be >= 0"),
        ({"output_format": "quads"}, "output_format must be one of"),
        ({"num_negatives": 0}, "num_negatives must be at least 1"),
    ],
)
def test_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mine(**kwargs)


def test_excluded_documents_are_never_mined_for_their_query_only() -> None:
    plain = mine(num_negatives=2, output_format="n-tuple")
    first = plain[plain["query"] == QUERIES[1]].iloc[0]
    blocked = [first["negative_1"]]
    excluded = mine(num_negatives=2, output_format="n-tuple", exclude={QUERIES[1]: blocked})
    row = excluded[excluded["query"] == QUERIES[1]].iloc[0]
    assert blocked[0] not in (row["negative_1"], row["negative_2"])
    assert [row["negative_1"], row["negative_2"]] == bm25_ranking(QUERIES[1])[1:3]
    others = excluded[excluded["query"] != QUERIES[1]].reset_index(drop=True)
    assert others.equals(plain[plain["query"] != QUERIES[1]].reset_index(drop=True))
