"""BM25 scores against the formula by hand, its on-disk cache, save/load, and the English analyzer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rerank_lib.retrieval import BM25, english_analyzer


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


def cache_entries(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))


def test_cache_is_reused_and_keyed_by_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = {"d0": "the cat sleeps", "d1": "the dog runs", "d2": "a cat and a dog"}
    fresh = BM25().fit(corpus, cache_dir=tmp_path)
    assert len(cache_entries(tmp_path)) == 1

    def no_rebuild(self, corpus):
        raise AssertionError("the cached index should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(BM25, "_build", no_rebuild)
        cached = BM25().fit(corpus, cache_dir=tmp_path)
    assert cached.search("cat dog") == fresh.search("cat dog")
    np.testing.assert_allclose(cached.get_scores("dogs"), fresh.get_scores("dogs"))

    BM25(k1=1.2).fit(corpus, cache_dir=tmp_path)  # other k1: another entry
    BM25(b=0.75).fit(corpus, cache_dir=tmp_path)  # other b: another entry
    BM25().fit({**corpus, "d3": "new"}, cache_dir=tmp_path)  # other corpus: another entry
    BM25().fit({**corpus, "d2": "a cat and two dogs"}, cache_dir=tmp_path)  # other text, same ids: another entry
    assert len(cache_entries(tmp_path)) == 5
    # a custom tokenizer without a name is never cached; with a name it is, under its own key
    BM25(tokenizer=whitespace).fit(corpus, cache_dir=tmp_path)
    assert len(cache_entries(tmp_path)) == 5
    BM25(tokenizer=whitespace, tokenizer_name="whitespace").fit(corpus, cache_dir=tmp_path)
    assert len(cache_entries(tmp_path)) == 6


def test_cache_files_hold_no_pickle(tmp_path: Path) -> None:
    BM25().fit({"d0": "the cat sleeps", "d1": "the dog runs"}, cache_dir=tmp_path)
    (entry,) = cache_entries(tmp_path)
    for path in entry.iterdir():
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises on a pickled array
        else:
            assert path.suffix == ".json", path


@pytest.mark.parametrize("damage", ["garbage", "missing", "other_corpus", "ids_lost"])
def test_damaged_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    corpus = {"d0": "the cat sleeps", "d1": "the dog runs"}
    bm25 = BM25().fit(corpus, cache_dir=tmp_path)
    (entry,) = cache_entries(tmp_path)
    arrays = sorted(entry.glob("*.npy"))
    if damage == "garbage":
        arrays[0].write_bytes(b"not an array")
    elif damage == "missing":
        arrays[0].unlink()
    elif damage == "other_corpus":  # an index saved by hand under this key
        BM25().fit({"x": "the cat"}).save(entry)
    else:
        meta = json.loads((entry / "rerank_lib.json").read_text())
        (entry / "rerank_lib.json").write_text(json.dumps(meta | {"doc_ids": ["d0"]}))
    rebuilt = BM25().fit(corpus, cache_dir=tmp_path)
    assert rebuilt.search("cat") == bm25.search("cat") and rebuilt.search("dog")[0][0] == "d1"
    assert BM25().fit(corpus, cache_dir=tmp_path).search("dog") == bm25.search("dog")  # and the cache is whole again


def test_save_and_load(tmp_path: Path) -> None:
    corpus = {"d0": "the cat sleeps", "d1": "the dog runs", "d2": "über café naïve"}
    bm25 = BM25(k1=1.1, b=0.6).fit(corpus)
    bm25.save(tmp_path / "index")
    loaded = BM25.load(tmp_path / "index")
    assert (loaded.k1, loaded.b) == (1.1, 0.6)
    assert loaded.search("café dog") == bm25.search("café dog")
    with pytest.raises(ValueError, match="not a readable BM25 index"):
        BM25.load(tmp_path / "nothing-here")


def test_a_corpus_without_terms_scores_zero_and_search_needs_fit() -> None:
    empty = BM25().fit({"d0": "the a an", "d1": ""})  # stop words only
    assert empty.get_scores("the cat").tolist() == [0.0, 0.0] and empty.search("cat") == []
    with pytest.raises(RuntimeError, match="fit"):
        BM25().get_scores("cat")


def test_english_analyzer() -> None:
    text = "John's dogs aren't running in the U.S.A. at 3.14, e.g. Hello-World"
    assert english_analyzer(text) == ["john", "dog", "aren't", "run", "u.s.a", "3.14", "e.g", "hello", "world"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        # Porter (1980) through PyStemmer, as Lucene's PorterStemFilter stems them
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("agreed", "agre"),
        ("motoring", "motor"),
        ("hopping", "hop"),
        ("relational", "relat"),
        ("generalizations", "gener"),
        ("oscillators", "oscil"),
        # Lucene's (m>0) LOGI -> LOG: "pathology" stems like "pathological"; "bio" has m = 0
        ("pathology", "patholog"),
        ("pathological", "patholog"),
        ("biology", "biologi"),
        ("hydrology", "hydrolog"),  # y after a consonant is a vowel
        ("epidemiology", "epidemiolog"),
        # one- and two-letter tokens are not stemmed
        ("bs", "bs"),
        ("5s", "5s"),
    ],
)
def test_porter_stems_as_lucene_does(word: str, stem: str) -> None:
    assert english_analyzer(word) == [stem]
