"""BM25 scores against the formula by hand, its on-disk cache, the analyzer and the Porter stemmer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rerank_lib.evaluation import BM25, english_analyzer, porter_stem


def whitespace(text: str) -> list[str]:
    return text.split()


def lucene_bm25(tf: int, df: int, num_docs: int, length: int, average_length: float, k1: float, b: float) -> float:
    idf = math.log(1 + (num_docs - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * length / average_length))


def test_scores_follow_the_formula() -> None:
    corpus = {"d0": "a b", "d1": "a a c", "d2": "c d e f"}
    bm25 = BM25(k1=1.2, b=0.75, tokenizer=whitespace).fit(corpus)
    average = (2 + 3 + 4) / 3
    expected_d0 = lucene_bm25(1, 2, 3, 2, average, 1.2, 0.75)
    expected_d1 = lucene_bm25(2, 2, 3, 3, average, 1.2, 0.75)
    assert bm25.search("a", top_k=10) == [("d1", pytest.approx(expected_d1)), ("d0", pytest.approx(expected_d0))]
    # two query terms add up; a repeated query term counts twice
    both = bm25.get_scores("a c")
    assert both[1] == pytest.approx(expected_d1 + lucene_bm25(1, 2, 3, 3, average, 1.2, 0.75))
    assert bm25.get_scores("a a")[0] == pytest.approx(2 * expected_d0)
    # no shared term: nothing is returned
    assert bm25.search("zzz") == []
    assert bm25.search("a", top_k=1) == [("d1", pytest.approx(expected_d1))]


def test_ties_keep_corpus_order_and_top_k_cuts() -> None:
    corpus = {f"d{i}": "same words here" for i in range(6)}
    bm25 = BM25(tokenizer=whitespace).fit(corpus)
    assert [doc for doc, _ in bm25.search("words", top_k=4)] == ["d0", "d1", "d2", "d3"]


def test_title_and_text_are_indexed_together() -> None:
    corpus = {"d0": {"title": "Paris", "text": "the capital"}, "d1": {"title": "", "text": "berlin"}}
    assert BM25().fit(corpus).search("paris")[0][0] == "d0"


def test_cache_is_reused_and_keyed_by_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = {"d0": "the cat sleeps", "d1": "the dog runs", "d2": "a cat and a dog"}
    fresh = BM25().fit(corpus, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_rebuild(self, corpus):
        raise AssertionError("the cached index should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(BM25, "_build", no_rebuild)
        cached = BM25().fit(corpus, cache_dir=tmp_path)
    assert cached.search("cat dog") == fresh.search("cat dog")
    np.testing.assert_allclose(cached.get_scores("dogs"), fresh.get_scores("dogs"))

    BM25(k1=1.2).fit(corpus, cache_dir=tmp_path)  # other k1: another entry
    BM25().fit({**corpus, "d3": "new"}, cache_dir=tmp_path)  # other corpus: another entry
    assert len(list(tmp_path.glob("*.npz"))) == 3
    # a custom tokenizer without a name is never cached
    BM25(tokenizer=whitespace).fit(corpus, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    corpus = {"d0": "the cat sleeps", "d1": "the dog runs"}
    bm25 = BM25()
    (tmp_path / f"{bm25.cache_key(corpus)}.npz").write_bytes(b"not a zip file")
    assert bm25.fit(corpus, cache_dir=tmp_path).search("cat")[0][0] == "d0"
    assert BM25().fit(corpus, cache_dir=tmp_path).search("dog")[0][0] == "d1"


def test_save_and_load(tmp_path: Path) -> None:
    corpus = {"d0": "the cat sleeps", "d1": "the dog runs", "d2": "über café naïve"}
    bm25 = BM25(k1=1.1, b=0.6).fit(corpus)
    bm25.save(tmp_path / "index.npz")
    loaded = BM25.load(tmp_path / "index.npz")
    assert (loaded.k1, loaded.b) == (1.1, 0.6)
    assert loaded.search("café dog") == bm25.search("café dog")


def test_english_analyzer() -> None:
    text = "John's dogs aren't running in the U.S.A. at 3.14, e.g. Hello-World"
    assert english_analyzer(text) == ["john", "dog", "aren't", "run", "u.s.a", "3.14", "e.g", "hello", "world"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        # examples from Porter (1980) and the reference implementation's test vocabulary
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("cats", "cat"),
        ("feed", "feed"),
        ("agreed", "agre"),
        ("plastered", "plaster"),
        ("motoring", "motor"),
        ("sing", "sing"),
        ("conflated", "conflat"),
        ("troubled", "troubl"),
        ("sized", "size"),
        ("hopping", "hop"),
        ("falling", "fall"),
        ("hissing", "hiss"),
        ("filing", "file"),
        ("happy", "happi"),
        ("sky", "sky"),
        ("relational", "relat"),
        ("conditional", "condit"),
        ("digitizer", "digit"),
        ("conformabli", "conform"),
        ("vietnamization", "vietnam"),
        ("decisiveness", "decis"),
        ("hopefulness", "hope"),
        ("sensibiliti", "sensibl"),
        ("triplicate", "triplic"),
        ("formative", "form"),
        ("electrical", "electr"),
        ("goodness", "good"),
        ("adjustable", "adjust"),
        ("replacement", "replac"),
        ("adoption", "adopt"),
        ("homologous", "homolog"),
        ("effective", "effect"),
        ("probate", "probat"),
        ("cease", "ceas"),
        ("controll", "control"),
        ("generalizations", "gener"),
        ("oscillators", "oscil"),
        ("is", "is"),
    ],
)
def test_porter_stemmer(word: str, stem: str) -> None:
    assert porter_stem(word) == stem
