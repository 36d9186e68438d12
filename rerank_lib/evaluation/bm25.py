"""In-process BM25, so BEIR evaluation and baselines need no search server.

Scoring is Lucene's ``BM25Similarity`` (what Anserini/Pyserini and Elasticsearch use)::

    score(q, d) = sum over query terms t of  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``N`` documents, ``df(t)`` documents containing ``t``, ``|d|`` the document's token count and ``avgdl`` the
mean count. A term repeated in the query counts once per occurrence, like repeated clauses of a Lucene query.
Defaults ``k1=0.9, b=0.4`` are Anserini's (the settings behind the published BM25 runs on TREC-DL and Pyserini's
BEIR baselines). Two known differences from Lucene: document lengths are exact (Lucene stores them lossily in one
byte), and :func:`english_analyzer` approximates Lucene's ``EnglishAnalyzer`` with a regular expression instead of
the full Unicode word-break rules; scores therefore match Lucene closely but not to the last digit.

The index is a sparse document-by-term matrix of precomputed term weights, so a query is one sparse column slice
and a dot product. :meth:`BM25.fit` can cache it on disk, keyed by a hash of the corpus, the analyzer, ``k1`` and
``b``; cache files hold only numbers and JSON text (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from rerank_lib.evaluation.porter import porter_stem

logger = logging.getLogger(__name__)

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split()
)
# Letters/digits joined by inner apostrophes or periods ("don't", "u.s.a", "3.14"), as Unicode word breaks keep them.
_TOKEN = re.compile(r"\w+(?:['\u2019.]\w+)*")
_POSSESSIVE = ("'s", "\u2019s")
ANALYZER_NAME = "english-porter-v1"
CACHE_FORMAT = 1


def english_analyzer(text: str) -> list[str]:
    """Tokenize, drop possessive 's, lower-case, remove English stop words and Porter-stem (Lucene's order)."""
    tokens = []
    for token in _TOKEN.findall(text.lower()):
        if token.endswith(_POSSESSIVE):
            token = token[:-2]
        if token and token not in ENGLISH_STOP_WORDS:
            tokens.append(porter_stem(token))
    return tokens


def default_cache_dir() -> Path:
    """``$RERANK_LIB_CACHE/bm25``, else ``$XDG_CACHE_HOME/rerank_lib/bm25``, else ``~/.cache/rerank_lib/bm25``."""
    root = os.environ.get("RERANK_LIB_CACHE")
    if root:
        return Path(root).expanduser() / "bm25"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "rerank_lib" / "bm25"


def document_text(document: str | Mapping[str, Any]) -> str:
    """A BEIR document as one text: title and text joined, as the usual BM25 and reranking setups read it."""
    if isinstance(document, str):
        return document
    title = str(document.get("title") or "").strip()
    text = str(document.get("text") or "").strip()
    return f"{title} {text}".strip()


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
        self.vocabulary: dict[str, int] = {}
        self._weights: sparse.csc_matrix | None = None

    # ----- indexing -----
    def fit(self, corpus: Mapping[str, str | Mapping[str, Any]], cache_dir: str | os.PathLike | None = None) -> BM25:
        """Index ``corpus`` (id -> text or ``{"title", "text"}``); with ``cache_dir``, reuse or store the index."""
        cache_path = None
        if cache_dir is not None:
            if self.tokenizer_name is None:
                logger.warning("BM25: a custom tokenizer without tokenizer_name is not cached.")
            else:
                cache_path = Path(cache_dir) / f"{self.cache_key(corpus)}.npz"
                if cache_path.is_file() and self._load_cache(cache_path):
                    logger.info("BM25: loaded index of %d documents from %s.", len(self.doc_ids), cache_path)
                    return self
        self._build(corpus)
        if cache_path is not None:
            self._save_cache(cache_path)
        return self

    def cache_key(self, corpus: Mapping[str, str | Mapping[str, Any]]) -> str:
        """SHA-256 of the corpus (ids and texts, in order), analyzer, ``k1``, ``b`` and the cache format."""
        digest = hashlib.sha256()
        digest.update(json.dumps([CACHE_FORMAT, self.tokenizer_name, self.k1, self.b]).encode())
        for doc_id, document in corpus.items():
            digest.update(json.dumps([str(doc_id), document_text(document)], ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def _build(self, corpus: Mapping[str, str | Mapping[str, Any]]) -> None:
        self.doc_ids = [str(doc_id) for doc_id in corpus]
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        for row, document in enumerate(corpus.values()):
            for token in self.tokenizer(document_text(document)):
                column = vocabulary.setdefault(token, len(vocabulary))
                rows.append(row)
                columns.append(column)
        self.vocabulary = vocabulary
        shape = (len(self.doc_ids), len(vocabulary))
        counts = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (np.asarray(rows, dtype=np.int64), np.asarray(columns))),
            shape=shape,
        )
        counts.sum_duplicates()
        self._weights = self._term_weights(counts).tocsc()
        logger.info("BM25: indexed %d documents, %d terms.", shape[0], shape[1])

    def _term_weights(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Replace each term count by its BM25 contribution, so a query only sums matrix entries."""
        num_docs = counts.shape[0]
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        average_length = lengths.mean() if num_docs and lengths.mean() > 0 else 1.0
        doc_freq = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log1p((num_docs - doc_freq + 0.5) / (doc_freq + 0.5))
        row_of_entry = np.repeat(np.arange(num_docs), np.diff(counts.indptr))
        tf = counts.data
        norm = self.k1 * (1 - self.b + self.b * lengths[row_of_entry] / average_length)
        weights = counts.copy()
        weights.data = idf[counts.indices] * tf / (tf + norm)
        return weights

    # ----- search -----
    def get_scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query``, in corpus order."""
        if self._weights is None:
            raise RuntimeError("BM25: call fit() before searching.")
        term_counts: dict[int, int] = {}
        for token in self.tokenizer(query):
            column = self.vocabulary.get(token)
            if column is not None:
                term_counts[column] = term_counts.get(column, 0) + 1
        if not term_counts:
            return np.zeros(len(self.doc_ids))
        columns = np.fromiter(term_counts.keys(), dtype=np.int64)
        multiplicity = np.fromiter(term_counts.values(), dtype=np.float64)
        return np.asarray(self._weights[:, columns] @ multiplicity).ravel()

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
        """Write the index to ``path`` (``.npz``) atomically."""
        self._save_cache(Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike, tokenizer: Callable[[str], list[str]] | None = None) -> BM25:
        """Read an index written by :meth:`save`; pass the tokenizer it was built with if it was a custom one."""
        bm25 = cls(tokenizer=tokenizer)
        if not bm25._load_cache(Path(path), check=False):
            raise ValueError(f"{path} is not a readable BM25 index.")
        return bm25

    def _save_cache(self, path: Path) -> None:
        assert self._weights is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": CACHE_FORMAT,
            "k1": self.k1,
            "b": self.b,
            "tokenizer": self.tokenizer_name,
            "doc_ids": self.doc_ids,
            "terms": list(self.vocabulary),
        }
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                np.savez(
                    handle,
                    meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
                    data=self._weights.data,
                    indices=self._weights.indices,
                    indptr=self._weights.indptr,
                    shape=np.asarray(self._weights.shape, dtype=np.int64),
                )
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def _load_cache(self, path: Path, check: bool = True) -> bool:
        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
                weights = sparse.csc_matrix(
                    (archive["data"], archive["indices"], archive["indptr"]), shape=tuple(archive["shape"])
                )
        except (OSError, ValueError, KeyError) as error:
            logger.warning("BM25: ignoring unreadable cache file %s (%s).", path, error)
            return False
        if meta.get("format") != CACHE_FORMAT:
            return False
        if check and (meta["k1"], meta["b"], meta["tokenizer"]) != (self.k1, self.b, self.tokenizer_name):
            return False
        self.k1, self.b, self.tokenizer_name = meta["k1"], meta["b"], meta["tokenizer"]
        self.doc_ids = list(meta["doc_ids"])
        self.vocabulary = {term: index for index, term in enumerate(meta["terms"])}
        self._weights = weights
        return True
