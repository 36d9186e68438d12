"""Hard-negative mining: for each (query, positive) row, pick corpus documents that look relevant but are not.

Random negatives are too easy to teach a reranker anything; the best negatives are documents a first-stage
retriever ranks high. The closest ones are often unlabelled positives, so the window (``range_min``,
``range_max``) and the margin to the positive's score skip them, and every known positive of the query (all the
rows that share its text) is excluded by text.

Scores: ``"bi-encoder"`` is the cosine of mean-pooled, normalised embeddings; ``"bm25"`` is
:class:`~rerank_lib.retrieval.bm25.BM25` (Lucene's formula, English analyzer); ``"both"`` ranks by the mean of the
cosine mapped onto [0, 1] and the BM25 score divided by the query's best BM25 score, so margins are on a [0, 1]
scale. With ``cross_encoder``, the candidates in the window and the positive are rescored by it, and the margin,
the top-k order and the output scores use its scores (the usual way to drop false negatives and to make targets
for distillation losses).

Scale: queries are scored in batches against the corpus in blocks (one matrix product per block) while a running
top-k per query keeps only the best candidates, so memory stays bounded by the block size rather than queries x
corpus, and ties keep the earlier corpus position. Past about a million passages, ``faiss_index`` (a faiss index
factory string such as ``"Flat"`` or ``"HNSW32"``, needs ``pip install 'rerank-pipeline[faiss]'``) searches the
bi-encoder embeddings instead; approximate indexes trade a few candidates for speed. ``benchmarks/mining_scale.py``
measures both. A ``datasets.Dataset`` in gives a ``Dataset`` out (a DataFrame, or records, give a DataFrame).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rerank_lib.bi_encoder import as_encoder
from rerank_lib.data.checks import label_values, require_rows, text_values
from rerank_lib.data.formats import DOCUMENT, DOCUMENTS, LABEL, LABELS, NEGATIVE, POSITIVE, QUERY, ntuple_columns
from rerank_lib.embedding_cache import default_cache_dir as embedding_cache_dir
from rerank_lib.embedding_cache import embed_corpus
from rerank_lib.retrieval.beir import document_text
from rerank_lib.retrieval.bm25 import BM25
from rerank_lib.retrieval.bm25 import default_cache_dir as bm25_cache_dir

logger = logging.getLogger(__name__)

Method = Literal["bi-encoder", "bm25", "both"]
OutputFormat = Literal["triplet", "n-tuple", "labeled-pair", "listwise"]
METHODS = ("bi-encoder", "bm25", "both")
OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "listwise")


@dataclass
class MiningStats:
    """What mining did, stored in the result's ``attrs["mining"]`` and logged."""

    rows: int
    queries: int
    corpus: int
    output_rows: int = 0
    negatives: int = 0
    rows_with_fewer_negatives: int = 0
    rows_without_negatives: int = 0
    rows_dropped: int = 0


@dataclass(frozen=True)
class _Candidates:
    index: np.ndarray  # corpus positions, best first, known positives excluded
    scores: np.ndarray


def mine_hard_negatives(
    dataset: pd.DataFrame | Sequence[Mapping[str, Any]] | Any,
    model: Any = None,
    *,
    corpus: Sequence[str] | Mapping[str, Any] | None = None,
    query_column: str | None = None,
    positive_column: str | None = None,
    method: Method = "bi-encoder",
    num_negatives: int = 3,
    range_min: int = 0,
    range_max: int = 100,
    margin: float | None = None,
    margin_type: Literal["absolute", "relative"] = "absolute",
    sampling: Literal["top", "random"] = "top",
    seed: int = 42,
    output_format: OutputFormat = "triplet",
    list_labels: Literal["scores", "binary"] = "scores",
    include_scores: bool = False,
    cross_encoder: Any = None,
    batch_size: int = 64,
    max_length: int = 256,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    show_progress_bar: bool | None = None,
    device: str | None = None,
    dataset_name: str = "mining",
    exclude: Mapping[str, Iterable[str]] | None = None,
    query_batch_size: int = 256,
    corpus_block_size: int = 16_384,
    faiss_index: str | None = None,
) -> pd.DataFrame | Any:
    """Add mined negatives to (query, positive) rows.

    Args:
        dataset: a DataFrame (or records, or a ``datasets.Dataset``) of (query, positive) rows. With a ``label``
            column, only rows labelled above 0 are positives.
        model: for ``"bi-encoder"``/``"both"``: a model folder or an object with ``encode(texts)`` returning unit
            vectors (e.g. :class:`~rerank_lib.bi_encoder.BiEncoder`).
        corpus: candidate documents (texts, or ``{id: text or {"title", "text"}}``); the positives are always added.
            Default: the dataset's positives.
        query_column, positive_column: default ``query``/``positive`` (or ``document``), else the first two columns.
        method: ``"bi-encoder"``, ``"bm25"`` or ``"both"``.
        num_negatives: negatives per row.
        range_min, range_max: candidates are the non-positive documents ranked ``range_min <= rank < range_max``
            (0-based) for the query.
        margin, margin_type: keep a candidate only if ``score <= positive - margin`` (absolute) or
            ``score <= positive * (1 - margin)`` (relative); ``None``: no margin.
        sampling: ``"top"`` takes the best candidates; ``"random"`` samples among them, seeded per row.
        seed: seed of random sampling.
        output_format: ``"triplet"`` (one row per negative), ``"n-tuple"`` (rows with fewer than ``num_negatives``
            are dropped), ``"labeled-pair"`` (positive 1, negatives 0) or ``"listwise"``
            (query, [positive, negatives...], labels).
        list_labels: listwise labels: the scores (for distillation) or 1 for the positive and 0 for negatives.
        include_scores: add a ``scores`` column (positive first) to triplets/n-tuples, ``score`` to pairs.
        cross_encoder: a CrossEncoder (``predict(pairs)``) to rescore the candidates.
        batch_size, max_length, device: embedding settings.
        cache_dir, use_cache: where corpus embeddings and the BM25 index are cached (default: the rerank_lib cache).
        exclude: ``{query: documents}`` that are never negatives of that query, besides its positives (e.g. the
            candidates it is already labelled against, when mined negatives are added to a labelled list).
        query_batch_size, corpus_block_size: queries scored together, and corpus documents per matrix product.
        faiss_index: ``method="bi-encoder"`` only: search a faiss index built with this factory string (``"Flat"``:
            exact; ``"HNSW32"``: approximate, for corpora past a million passages) instead of the blocks.

    Returns:
        A ``datasets.Dataset`` when ``dataset`` is one (toolkit code calls ``.column_names``), else a DataFrame with
        the mining statistics in ``attrs["mining"]``.
    """
    _check_options(method, model, num_negatives, range_min, range_max, margin, margin_type, sampling, output_format)
    if faiss_index is not None and method != "bi-encoder":
        raise ValueError(f"faiss_index searches bi-encoder embeddings; method {method!r} needs the exact blocks.")
    if query_batch_size < 1 or corpus_block_size < 1:
        raise ValueError(
            f"query_batch_size and corpus_block_size must be positive; got {query_batch_size}, {corpus_block_size}."
        )
    frame = _as_frame(dataset)
    require_rows(frame, dataset_name)
    query_column, positive_column = _columns(frame, query_column, positive_column)
    if LABEL in frame.columns and LABEL not in (query_column, positive_column):
        labels = label_values(frame, LABEL, dataset_name)
        frame = frame[[value > 0 for value in labels]].reset_index(drop=True)
        require_rows(frame, dataset_name)
    queries_by_row = text_values(frame, query_column, dataset_name)
    positives_by_row = text_values(frame, positive_column, dataset_name)

    queries = list(dict.fromkeys(queries_by_row))
    query_index = {query: index for index, query in enumerate(queries)}
    texts = _corpus_texts(corpus, positives_by_row)
    text_index = {text: index for index, text in enumerate(texts)}
    known: list[set[int]] = [set() for _ in queries]
    rows_of_query: list[list[int]] = [[] for _ in queries]
    positions = [text_index[positive] for positive in positives_by_row]
    for row, (query, position) in enumerate(zip(queries_by_row, positions, strict=True)):
        known[query_index[query]].add(position)
        rows_of_query[query_index[query]].append(row)
    for index, query in enumerate(queries):
        if query in text_index:
            known[index].add(text_index[query])  # a document identical to the query is no negative
        known[index].update(text_index[text] for text in (exclude or {}).get(query, ()) if text in text_index)

    stats = MiningStats(rows=len(frame), queries=len(queries), corpus=len(texts))
    scorer = _Scorer(method, model, texts, batch_size, max_length, device, cache_dir, use_cache, show_progress_bar)
    scorer.query_batch_size, scorer.corpus_block_size, scorer.faiss_index = (
        query_batch_size,
        corpus_block_size,
        faiss_index,
    )
    candidates, positive_scores = scorer.rank(queries, known, rows_of_query, positions, range_max)
    if cross_encoder is not None:
        candidates, positive_scores = _rescore(
            cross_encoder, queries, texts, candidates, range_min, queries_by_row, positives_by_row, batch_size
        )

    rows = []
    for row, (query, positive) in enumerate(zip(queries_by_row, positives_by_row, strict=True)):
        found = candidates[query_index[query]]
        index, scores = found.index[range_min:range_max], found.scores[range_min:range_max]
        positive_score = positive_scores[row]
        if margin is not None:
            limit = positive_score - margin if margin_type == "absolute" else positive_score * (1 - margin)
            keep = scores <= limit
            index, scores = index[keep], scores[keep]
        if sampling == "random" and len(index) > num_negatives:
            chosen = np.sort(np.random.default_rng((seed, row)).choice(len(index), num_negatives, replace=False))
        else:
            chosen = np.arange(min(num_negatives, len(index)))
        negatives = [texts[i] for i in index[chosen]]
        rows.append((query, positive, positive_score, negatives, [float(s) for s in scores[chosen]]))
    result = _output(rows, output_format, num_negatives, list_labels, include_scores, stats)
    result.attrs["mining"] = asdict(stats)
    logger.info("Mined hard negatives (%s, %s): %s", method, output_format, asdict(stats))
    if _is_hf_dataset(dataset):
        from datasets import Dataset

        return Dataset.from_pandas(result, preserve_index=False)
    return result


def _check_options(
    method: str,
    model: Any,
    num_negatives: int,
    range_min: int,
    range_max: int,
    margin: float | None,
    margin_type: str,
    sampling: str,
    output_format: str,
) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if method != "bm25" and model is None:
        raise ValueError(f"method {method!r} needs a bi-encoder model (a folder or an object with encode()).")
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be at least 1; got {num_negatives}.")
    if not 0 <= range_min < range_max:
        raise ValueError(f"Need 0 <= range_min < range_max; got range_min={range_min}, range_max={range_max}.")
    if margin_type not in ("absolute", "relative"):
        raise ValueError(f"margin_type must be 'absolute' or 'relative'; got {margin_type!r}.")
    if margin is not None and (margin < 0 or (margin_type == "relative" and margin >= 1)):
        raise ValueError(f"margin must be >= 0 (and < 1 when relative); got {margin}.")
    if sampling not in ("top", "random"):
        raise ValueError(f"sampling must be 'top' or 'random'; got {sampling!r}.")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}; got {output_format!r}.")


def _is_hf_dataset(dataset: Any) -> bool:
    return type(dataset).__module__.startswith("datasets.") and hasattr(dataset, "column_names")


def _as_frame(dataset: Any) -> pd.DataFrame:
    if isinstance(dataset, pd.DataFrame):
        return dataset.reset_index(drop=True)
    if hasattr(dataset, "to_pandas"):
        return dataset.to_pandas()
    return pd.DataFrame.from_records(list(dataset))


def _columns(frame: pd.DataFrame, query: str | None, positive: str | None) -> tuple[str, str]:
    columns = list(frame.columns)
    if query is None:
        query = QUERY if QUERY in columns else columns[0]
    if positive is None:
        positive = next((c for c in (POSITIVE, DOCUMENT) if c in columns), None)
        positive = positive or next((c for c in columns if c not in (query, LABEL)), None)
    for column in (query, positive):
        if column is None or column not in columns:
            raise ValueError(f"Mining needs a query and a positive column; got {query!r}, {positive!r} of {columns}.")
    return query, positive  # type: ignore[return-value]


def _corpus_texts(corpus: Sequence[str] | Mapping[str, Any] | None, positives: Sequence[str]) -> list[str]:
    """Distinct documents: the corpus (in order) then any positive not in it; identical texts count once."""
    if corpus is None:
        documents: list[str] = []
    elif isinstance(corpus, Mapping):
        documents = [document_text(document) for document in corpus.values()]
    else:
        documents = [str(document) for document in corpus]
    return list(dict.fromkeys([text for text in documents if text.strip()] + list(positives)))


class _Scorer:
    """First-stage scores of every corpus document for each query."""

    def __init__(
        self,
        method: str,
        model: Any,
        texts: list[str],
        batch_size: int,
        max_length: int,
        device: str | None,
        cache_dir: str | os.PathLike | None,
        use_cache: bool,
        show_progress_bar: bool | None,
    ) -> None:
        self.method, self.batch_size, self.show = method, batch_size, show_progress_bar
        self.corpus_size = len(texts)
        self.query_batch_size, self.corpus_block_size, self.faiss_index = 256, 16_384, None
        self.encoder = self.embeddings = self.bm25 = None
        if method in ("bi-encoder", "both"):
            self.encoder = as_encoder(model, max_length=max_length, device=device)
            folder = (cache_dir and os.path.join(cache_dir, "embeddings")) or embedding_cache_dir()
            self.embeddings = embed_corpus(self.encoder, texts, batch_size, folder if use_cache else None, self.show)
        if method in ("bm25", "both"):
            folder = (cache_dir and os.path.join(cache_dir, "bm25")) or bm25_cache_dir()
            corpus = {str(index): text for index, text in enumerate(texts)}
            self.bm25 = BM25().fit(corpus, cache_dir=folder if use_cache else None)

    def rank(
        self,
        queries: list[str],
        known: list[set[int]],
        rows_of_query: list[list[int]],
        positions: list[int],
        limit: int,
    ) -> tuple[list[_Candidates], list[float]]:
        """Each query's best ``limit`` candidates, and each row's positive score (``positions``: its corpus slot)."""
        query_vectors = None
        if self.encoder is not None:
            query_vectors = np.asarray(self.encoder.encode(queries, batch_size=self.batch_size), dtype=np.float32)
        if self.faiss_index is not None:
            return self._rank_with_faiss(query_vectors, known, rows_of_query, positions, limit)
        corpus_size = self.corpus_size
        step = self.query_batch_size
        if self.bm25 is not None:  # each query's BM25 row spans the corpus: bound the batch to ~160 MB of them
            step = max(1, min(step, 20_000_000 // max(corpus_size, 1)))
        candidates: list[_Candidates] = []
        positive_scores = [0.0] * len(positions)
        for start in tqdm(range(0, len(queries), step), desc="Mining", disable=not self.show):
            batch = list(range(start, min(start + step, len(queries))))
            block_scores = self._block_scorer(queries, query_vectors, batch)
            for offset, index in enumerate(batch):
                rows = rows_of_query[index]
                columns = np.array([positions[row] for row in rows], dtype=np.int64)
                values = block_scores(columns, only_row=offset)
                for row, value in zip(rows, values, strict=True):
                    positive_scores[row] = float(value)
            candidates.extend(
                _top_k_blocks(block_scores, [known[i] for i in batch], corpus_size, limit, self.corpus_block_size)
            )
        return candidates, positive_scores

    def _block_scorer(self, queries: list[str], vectors: np.ndarray | None, batch: list[int]) -> Any:
        """``scores(columns, only_row=None)``: the batch's scores of the given corpus columns (a slice or an array)."""
        lexical = None
        if self.bm25 is not None:
            lexical = np.stack([self.bm25.get_scores(queries[index]) for index in batch]).astype(np.float64)
            if self.embeddings is not None:  # "both": BM25 divided by each query's best BM25 score
                best = lexical.max(axis=1, keepdims=True)
                lexical = np.divide(lexical, best, out=np.zeros_like(lexical), where=best > 0)
        batch_vectors = vectors[batch] if vectors is not None else None

        def scores(columns: slice | np.ndarray, only_row: int | None = None) -> np.ndarray:
            rows = slice(None) if only_row is None else slice(only_row, only_row + 1)
            cosine = None
            if batch_vectors is not None:  # float32, as the embeddings: the selection needs no more
                cosine = batch_vectors[rows] @ self.embeddings[columns].T
            if lexical is None:
                result = cosine
            elif cosine is None:
                result = np.array(lexical[rows][:, columns])  # a copy: the caller masks it
            else:
                result = 0.5 * (cosine.astype(np.float64) + 1) / 2 + 0.5 * lexical[rows][:, columns]
            return result[0] if only_row is not None else result

        return scores

    def _rank_with_faiss(
        self,
        vectors: np.ndarray,
        known: list[set[int]],
        rows_of_query: list[list[int]],
        positions: list[int],
        limit: int,
    ) -> tuple[list[_Candidates], list[float]]:
        """Candidates from a faiss inner-product index over the (unit) corpus embeddings."""
        try:
            import faiss
        except ImportError as error:
            raise ImportError("faiss_index needs faiss: pip install 'rerank-pipeline[faiss]'.") from error
        corpus = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        index = faiss.index_factory(corpus.shape[1], self.faiss_index, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(corpus)
        index.add(corpus)
        depth = min(len(corpus), limit + max((len(k) for k in known), default=0))
        found_scores, found_index = index.search(np.ascontiguousarray(vectors, dtype=np.float32), depth)
        candidates = []
        for query, (values, ids) in enumerate(zip(found_scores, found_index, strict=True)):
            keep = [i for i, doc in enumerate(ids) if doc >= 0 and int(doc) not in known[query]][:limit]
            candidates.append(_Candidates(ids[keep].astype(np.int64), values[keep].astype(np.float64)))
        positive_scores = [0.0] * len(positions)
        for query, rows in enumerate(rows_of_query):
            for row in rows:
                positive_scores[row] = float(vectors[query] @ corpus[positions[row]])
        return candidates, positive_scores


def _top_k_blocks(
    scores: Any, excluded: list[set[int]], corpus_size: int, limit: int, block_size: int
) -> list[_Candidates]:
    """Each batch row's ``limit`` best corpus positions outside its excluded set, best first (ties: lower position).

    The corpus is scored ``block_size`` columns at a time; a running top-k per row is merged with each block's.
    """
    rows = len(excluded)
    best_values = np.full((rows, 0), -np.inf)
    best_index = np.zeros((rows, 0), dtype=np.int64)
    excluded_rows = np.array([row for row, known in enumerate(excluded) for _ in known], dtype=np.int64)
    excluded_cols = np.array([col for known in excluded for col in sorted(known)], dtype=np.int64)
    for low in range(0, corpus_size, block_size):
        high = min(low + block_size, corpus_size)
        block = scores(slice(low, high))
        inside = (excluded_cols >= low) & (excluded_cols < high)
        block[excluded_rows[inside], excluded_cols[inside] - low] = -np.inf
        values, index = _block_top_k(block, limit)
        values = np.concatenate([best_values, values.astype(np.float64)], axis=1)
        index = np.concatenate([best_index, index + low], axis=1)
        order = np.lexsort((index, -values), axis=1)[:, :limit]
        best_values, best_index = np.take_along_axis(values, order, 1), np.take_along_axis(index, order, 1)
    candidates = []
    for values, index in zip(best_values, best_index, strict=True):
        finite = np.isfinite(values)
        candidates.append(_Candidates(index[finite], values[finite]))
    return candidates


def _block_top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values and their columns (unordered), ties at the cut resolved to lower columns."""
    width = block.shape[1]
    if width <= k:
        return block, np.broadcast_to(np.arange(width), block.shape).copy()
    chosen = np.argpartition(-block, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(block, chosen, 1).min(axis=1)
    above = (block > kth[:, None]).sum(axis=1)
    ties = (block == kth[:, None]).sum(axis=1)
    for row in np.flatnonzero(ties > k - above):  # the cut falls inside a tie: take the lowest columns of it
        higher = np.flatnonzero(block[row] > kth[row])
        equal = np.flatnonzero(block[row] == kth[row])[: k - len(higher)]
        chosen[row] = np.concatenate([higher, equal])
    return np.take_along_axis(block, chosen, 1), chosen


def _rescore(
    cross_encoder: Any,
    queries: list[str],
    texts: list[str],
    candidates: list[_Candidates],
    range_min: int,
    queries_by_row: list[str],
    positives_by_row: list[str],
    batch_size: int,
) -> tuple[list[_Candidates], list[float]]:
    """Cross-encoder scores for the window's candidates (re-sorted by them) and for each row's positive."""
    pairs: dict[tuple[str, str], int] = {}
    for query, found in zip(queries, candidates, strict=True):
        for position in found.index[range_min:]:
            pairs.setdefault((query, texts[position]), len(pairs))
    for query, positive in zip(queries_by_row, positives_by_row, strict=True):
        pairs.setdefault((query, positive), len(pairs))
    scores = np.asarray(cross_encoder.predict(list(pairs), batch_size=batch_size), dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"Rescoring needs a cross-encoder with one output per pair; got shape {scores.shape}.")
    rescored = []
    for query, found in zip(queries, candidates, strict=True):
        window = found.index[range_min:]
        new = np.array([scores[pairs[(query, texts[position])]] for position in window])
        order = np.argsort(-new, kind="stable")
        # Keep the first-stage window: positions before range_min stay (unused), the window is re-sorted.
        index = np.concatenate([found.index[:range_min], window[order]])
        values = np.concatenate([found.scores[:range_min], new[order]])
        rescored.append(_Candidates(index, values))
    positive_scores = [float(scores[pairs[pair]]) for pair in zip(queries_by_row, positives_by_row, strict=True)]
    return rescored, positive_scores


def _output(
    rows: list[tuple[str, str, float, list[str], list[float]]],
    output_format: str,
    num_negatives: int,
    list_labels: str,
    include_scores: bool,
    stats: MiningStats,
) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    for query, positive, positive_score, negatives, scores in rows:
        if not negatives:
            stats.rows_without_negatives += 1
            stats.rows_dropped += 1
            continue
        if len(negatives) < num_negatives:
            stats.rows_with_fewer_negatives += 1
            if output_format == "n-tuple":
                stats.rows_dropped += 1
                continue
        stats.negatives += len(negatives)
        if output_format == "triplet":
            for negative, score in zip(negatives, scores, strict=True):
                record = {QUERY: query, POSITIVE: positive, NEGATIVE: negative}
                records.append(record | ({"scores": [positive_score, score]} if include_scores else {}))
        elif output_format == "n-tuple":
            record = dict(zip(ntuple_columns(num_negatives), [query, positive, *negatives], strict=True))
            records.append(record | ({"scores": [positive_score, *scores]} if include_scores else {}))
        elif output_format == "labeled-pair":
            documents = [(positive, 1.0, positive_score)]
            documents += [(negative, 0.0, score) for negative, score in zip(negatives, scores, strict=True)]
            for document, grade, score in documents:
                record = {QUERY: query, DOCUMENT: document, LABEL: grade}
                records.append(record | ({"score": score} if include_scores else {}))
        else:
            labels = [positive_score, *scores] if list_labels == "scores" else [1.0] + [0.0] * len(negatives)
            records.append({QUERY: query, DOCUMENTS: [positive, *negatives], LABELS: labels})
    stats.output_rows = len(records)
    columns = {
        "triplet": [QUERY, POSITIVE, NEGATIVE],
        "n-tuple": ntuple_columns(num_negatives),
        "labeled-pair": [QUERY, DOCUMENT, LABEL],
        "listwise": [QUERY, DOCUMENTS, LABELS],
    }[output_format]
    if include_scores and output_format != "listwise":
        columns = columns + ["score" if output_format == "labeled-pair" else "scores"]
    return pd.DataFrame.from_records(records, columns=columns)
