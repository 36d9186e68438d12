"""In-process BM25 on ``bm25s``, so BEIR evaluation, mining and baselines need no search server.

Scoring is ``bm25s``'s ``"lucene"`` variant, Lucene's ``BM25Similarity`` (what Anserini/Pyserini and Elasticsearch
use)::

    score(q, d) = sum over query terms t of  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``N`` documents, ``df(t)`` documents containing ``t``, ``|d|`` the document's token count and ``avgdl`` the
mean count. A term repeated in the query counts once per occurrence, like repeated clauses of a Lucene query.
Defaults ``k1=0.9, b=0.4`` are Anserini's (the settings behind the published BM25 runs on TREC-DL and Pyserini's
BEIR baselines). :func:`english_analyzer` approximates Lucene's ``EnglishAnalyzer``: a regular expression instead of
the full Unicode word-break rules, Lucene's stop words, and the Porter stemmer of PyStemmer (Snowball's C
implementation), so scores match Lucene closely but not to the last digit.

Snowball's Porter stemmer is Porter's published algorithm; Lucene's (like Porter's own reference code) adds a
few departures. One of them moves this project's baselines, so it is applied here: ``-logi`` becomes ``-log``, which
stems "pathology" like "pathological". Without it BM25's NDCG@10 on TREC-DL19 falls from 0.726 to 0.709
(``benchmarks/bm25_speed.py``).

``bm25s`` keeps the index as a sparse matrix of precomputed term weights. :meth:`BM25.fit` can cache it on disk
(``bm25s``'s own save format: ``.npy`` arrays and JSON, no pickle), keyed by a hash of the corpus, the analyzer,
``k1``, ``b`` and the cache format.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

from rerank_lib.atomic import build_directory_atomic, write_text_atomic
from rerank_lib.cache import cache_dir
from rerank_lib.retrieval.beir import document_text

logger = logging.getLogger(__name__)

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split()
)
# Letters/digits joined by inner apostrophes or periods ("don't", "u.s.a", "3.14"), as Unicode word breaks keep them.
_TOKEN = re.compile(r"\w+(?:['\u2019.]\w+)*")
_POSSESSIVE = ("'s", "\u2019s")
ANALYZER_NAME = "english-pystemmer-porter-v1"
CACHE_FORMAT = 2
META_FILE = "rerank_lib.json"
Corpus = Mapping[str, str | Mapping[str, Any]]


@cache
def _porter() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("porter")


def _measure_above_zero(stem: str) -> bool:
    """Porter's m > 0: a vowel followed by a consonant (y is a vowel after a consonant, else a consonant)."""
    consonant = []
    for letter in stem:
        consonant.append(letter not in "aeiou" and not (letter == "y" and consonant and consonant[-1]))
    return any(not first and second for first, second in zip(consonant, consonant[1:], strict=False))


def _lucene_stem(stem: str) -> str:
    """Lucene's (m>0) LOGI -> LOG on a Snowball Porter stem; no later Porter step touches a stem ending in "log"."""
    if stem.endswith("logi") and _measure_above_zero(stem[:-4]):
        return stem[:-1]
    return stem


@lru_cache(maxsize=1 << 18)
def _term(token: str) -> str | None:
    """The indexed form of one lower-cased token, or None for a stop word (cached: corpora repeat their words)."""
    if token.endswith(_POSSESSIVE):
        token = token[:-2]
    if not token or token in ENGLISH_STOP_WORDS:
        return None
    return token if len(token) <= 2 else _lucene_stem(_porter().stemWord(token))


def english_analyzer(text: str) -> list[str]:
    """Tokenize, drop possessive 's, lower-case, remove English stop words and Porter-stem (Lucene's order).

    Tokens of one or two characters are not stemmed, as in Porter's reference implementation (and Lucene's).
    """
    return [term for term in map(_term, _TOKEN.findall(text.lower())) if term is not None]


def default_cache_dir() -> Path:
    """``$RERANK_LIB_CACHE/bm25``, else ``$XDG_CACHE_HOME/rerank_lib/bm25``, else ``~/.cache/rerank_lib/bm25``."""
    return cache_dir("bm25")


class BM25:
    """Okapi BM25 over an in-memory corpus: ``BM25().fit(corpus).search(query, top_k)``.

    Args:
        k1: term-frequency saturation.
        b: document-length normalisation (0: none, 1: full).
        tokenizer: text -> tokens, used for documents and queries; default :func:`english_analyzer`.
        tokenizer_name: identifies a custom tokenizer in the cache key; without it a custom tokenizer disables
            the on-disk cache (a changed function under the same name would silently reuse a stale index).
    """

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        tokenizer: Callable[[str], list[str]] | None = None,
        tokenizer_name: str | None = None,
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1; got k1={k1}, b={b}.")
        self.k1 = float(k1)
        self.b = float(b)
        self.tokenizer = tokenizer or english_analyzer
        self.tokenizer_name = ANALYZER_NAME if tokenizer is None else tokenizer_name
        self.doc_ids: list[str] = []
        self._index: bm25s.BM25 | None = None  # None when fitted on a corpus without a single term
        self._fitted = False

    # ----- indexing -----
    def fit(self, corpus: Corpus, cache_dir: str | os.PathLike | None = None) -> BM25:
        """Index ``corpus`` (id -> text or ``{"title", "text"}``); with ``cache_dir``, reuse or store the index."""
        cache_path = None
        if cache_dir is not None:
            if self.tokenizer_name is None:
                logger.warning("BM25: a custom tokenizer without tokenizer_name is not cached.")
            else:
                key = self.cache_key(corpus)
                cache_path = Path(cache_dir) / key
                if cache_path.is_dir() and self._load(cache_path, key=key):
                    logger.info("BM25: loaded index of %d documents from %s.", len(self.doc_ids), cache_path)
                    return self
        self._build(corpus)
        if cache_path is not None:
            self._save(cache_path, key=cache_path.name)
        return self

    def cache_key(self, corpus: Corpus) -> str:
        """SHA-256 of the corpus (ids and texts, in order), analyzer, ``k1``, ``b`` and the cache format."""
        digest = hashlib.sha256()
        digest.update(json.dumps([CACHE_FORMAT, self.tokenizer_name, self.k1, self.b]).encode())
        for doc_id, document in corpus.items():
            digest.update(json.dumps([str(doc_id), document_text(document)], ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def _build(self, corpus: Corpus) -> None:
        self.doc_ids = [str(doc_id) for doc_id in corpus]
        tokens = [self.tokenizer(document_text(document)) for document in corpus.values()]
        index = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        if any(tokens):
            index.index(tokens, create_empty_token=False, show_progress=False)
        else:  # bm25s cannot index a corpus without a single term; every query then scores 0
            index = None
        self._index, self._fitted = index, True
        logger.info("BM25: indexed %d documents.", len(self.doc_ids))

    # ----- search -----
    def get_scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query``, in corpus order."""
        if not self._fitted:
            raise RuntimeError("BM25: call fit() before searching.")
        terms = self._index.get_tokens_ids(self.tokenizer(query)) if self._index is not None else []
        if not terms:
            return np.zeros(len(self.doc_ids))
        return np.asarray(self._index.get_scores_from_ids(terms), dtype=np.float64)

    def search(self, query: str, top_k: int = 100) -> list[tuple[str, float]]:
        """The ``top_k`` best ``(doc_id, score)``, best first; only documents sharing a term with the query.

        Equal scores are ordered by corpus position, so results are deterministic.
        """
        scores = self.get_scores(query)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > top_k:
            kth = np.partition(scores[candidates], len(candidates) - top_k)[len(candidates) - top_k]
            candidates = candidates[scores[candidates] >= kth]
        order = np.lexsort((candidates, -scores[candidates]))[:top_k]
        return [(self.doc_ids[index], float(scores[index])) for index in candidates[order]]

    def search_many(self, queries: Mapping[str, str], top_k: int = 100) -> dict[str, list[tuple[str, float]]]:
        """:meth:`search` for each ``query_id -> text``."""
        return {query_id: self.search(text, top_k) for query_id, text in queries.items()}

    # ----- persistence -----
    def save(self, path: str | os.PathLike) -> None:
        """Write the index to the folder ``path`` (replaced whole, atomically): bm25s's files and our metadata."""
        self._save(Path(path))

    def _save(self, path: Path, key: str | None = None) -> None:
        meta = {
            "format": CACHE_FORMAT,
            "cache_key": key,
            "k1": self.k1,
            "b": self.b,
            "tokenizer": self.tokenizer_name,
            "doc_ids": self.doc_ids,
        }

        def write(staging: Path) -> None:
            if self._index is not None:
                self._index.save(staging, show_progress=False)
            write_text_atomic(staging / META_FILE, json.dumps(meta, ensure_ascii=False))

        build_directory_atomic(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike, tokenizer: Callable[[str], list[str]] | None = None) -> BM25:
        """Read an index written by :meth:`save`; pass the tokenizer it was built with if it was a custom one."""
        bm25 = cls(tokenizer=tokenizer)
        if not bm25._load(Path(path)):
            raise ValueError(f"{path} is not a readable BM25 index.")
        return bm25

    def _load(self, path: Path, key: str | None = None) -> bool:
        """Read the folder; with ``key`` (a cache lookup), only an index written under that very key is taken."""
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
            if meta.get("format") != CACHE_FORMAT or (key is not None and meta.get("cache_key") != key):
                return False
            has_terms = (path / "params.index.json").is_file()
            index = bm25s.BM25.load(path, show_progress=False) if has_terms else None
            if index is not None and index.scores["num_docs"] != len(meta["doc_ids"]):
                raise ValueError(f"{index.scores['num_docs']} indexed documents, {len(meta['doc_ids'])} ids")
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("BM25: ignoring unreadable cache folder %s (%s).", path, error)
            return False
        self.k1, self.b, self.tokenizer_name = meta["k1"], meta["b"], meta["tokenizer"]
        self.doc_ids = list(meta["doc_ids"])
        self._index, self._fitted = index, True
        return True
