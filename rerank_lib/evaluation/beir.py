"""BEIR-style evaluation: rerank a BM25 first stage over local BEIR folders (e.g. SciFact, TREC-DL19).

The folders are read by :func:`rerank_lib.retrieval.beir.load_beir` and the first stage is
:class:`rerank_lib.retrieval.bm25.BM25`.

Numbers follow BEIR's evaluation (``pytrec_eval`` on the reranked top-k run): judged documents outside the top-k
are misses, a document counts as relevant for MAP and MRR when its grade reaches ``relevance_level`` (default 1,
pytrec_eval's), and NDCG uses the grades as gains. Queries without any positive judgment are not evaluated.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation.base import CrossEncoderEvaluator, predict_scores
from rerank_lib.evaluation.metrics import ranking_metrics
from rerank_lib.retrieval.beir import document_text, load_beir
from rerank_lib.retrieval.bm25 import BM25, default_cache_dir

logger = logging.getLogger(__name__)


@dataclass
class _PreparedQuery:
    query_id: str
    text: str
    doc_ids: list[str]
    bm25_scores: list[float]
    grades: np.ndarray
    relevant: np.ndarray
    missing_grades: list[float]
    missing_relevant: int


@dataclass
class _PreparedDataset:
    name: str
    corpus_texts: dict[str, str]
    queries: list[_PreparedQuery]
    base: dict[str, float]


class CrossEncoderBEIREvaluator(CrossEncoderEvaluator):
    """MAP, MRR@k and NDCG@k of reranking BM25's top ``top_k`` on local BEIR folders, with the BM25 baseline.

    Args:
        datasets: ``{name: folder}``, or folders (named by their last path component).
        split: qrels file to use (``qrels/<split>.tsv``).
        top_k: BM25 candidates reranked per query.
        at_k: cut-off of MRR and NDCG.
        k1, b: BM25 parameters (Anserini's defaults).
        relevance_level: lowest grade that counts as relevant for MAP and MRR (TREC-DL's official passage
            numbers use 2; BEIR and pytrec_eval use 1).
        cache_dir: where BM25 indexes are cached; default :func:`~rerank_lib.retrieval.bm25.default_cache_dir`.
        use_cache: set False to always rebuild the index in memory.
        max_queries: evaluate a seeded sample of this many judged queries per dataset (all when None): a cheap,
            fixed subset for evaluations during training.
        query_seed: the seed of that sample, so every evaluation of a run (and every run) scores the same queries.
        queries: evaluate only these query ids (None: every judged query), e.g. the queries a dev split holds out of
            a training set's qrels; the BM25 first stage still searches the whole corpus.

    Keys: ``{name}_{dataset}_{metric}`` and ``{name}_{dataset}_base_{metric}`` per dataset, and
    ``{name}_mean_{metric}`` / ``{name}_mean_base_{metric}`` averaged over datasets (each dataset weighs the same).
    The primary metric is ``{name}_mean_ndcg@{at_k}``. Data is read and BM25 run once, on the first call.
    """

    csv_prefix = "CrossEncoderBEIREvaluator"

    def __init__(
        self,
        datasets: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike],
        split: str = "test",
        top_k: int = 100,
        at_k: int = 10,
        k1: float = 0.9,
        b: float = 0.4,
        relevance_level: int = 1,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        name: str = "",
        batch_size: int = 64,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        splits: Mapping[str, str] | None = None,
        max_queries: int | None = None,
        query_seed: int = 0,
        queries: Collection[str] | None = None,
    ) -> None:
        super().__init__(name=name, batch_size=batch_size, show_progress_bar=show_progress_bar, write_csv=write_csv)
        if isinstance(datasets, Mapping):
            folders = {str(key): Path(value) for key, value in datasets.items()}
        else:
            folders = {}
            for folder in datasets:
                dataset_name = Path(folder).name
                if dataset_name in folders:
                    raise DataValidationError(f"BEIR evaluator: two datasets are named {dataset_name!r}.")
                folders[dataset_name] = Path(folder)
        if not folders:
            raise DataValidationError("BEIR evaluator: no datasets given.")
        for dataset_name in folders:
            if not dataset_name or dataset_name == "mean":
                raise DataValidationError(f"BEIR evaluator: {dataset_name!r} is not a usable dataset name.")
        if top_k < 1 or at_k < 1 or relevance_level < 1:
            raise ValueError(
                f"top_k, at_k and relevance_level must be at least 1; got {top_k}, {at_k}, {relevance_level}."
            )
        self.folders = folders
        self.split = split
        # Per-dataset qrels split, e.g. SciFact "dev" next to TREC-DL19 "test" in one evaluator.
        self.splits = {name: splits.get(name, split) for name in folders} if splits else dict.fromkeys(folders, split)
        unknown = sorted(set(splits or {}) - set(folders))
        if unknown:
            raise DataValidationError(f"BEIR evaluator: splits given for unknown datasets {unknown}.")
        if max_queries is not None and max_queries < 1:
            raise ValueError(f"max_queries must be at least 1 (or None for all queries); got {max_queries}.")
        self.max_queries = max_queries
        self.query_seed = query_seed
        self.queries = None if queries is None else frozenset(str(query) for query in queries)
        self.top_k = top_k
        self.at_k = at_k
        self.k1 = k1
        self.b = b
        self.relevance_level = relevance_level
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = use_cache
        self._primary = f"mean_ndcg@{at_k}"
        self._prepared: list[_PreparedDataset] | None = None

    @property
    def metric_names(self) -> list[str]:
        return ["map", f"mrr@{self.at_k}", f"ndcg@{self.at_k}"]

    @property
    def num_queries(self) -> dict[str, int]:
        """Evaluated queries per dataset (judged, with at least one positive judgment)."""
        return {dataset.name: len(dataset.queries) for dataset in self._datasets()}

    def candidate_pairs(self) -> list[tuple[str, str]]:
        """Every (query, document) pair the evaluator scores: its first stage's candidates, in scoring order."""
        return [
            (query.text, dataset.corpus_texts[doc_id])
            for dataset in self._datasets()
            for query in dataset.queries
            for doc_id in query.doc_ids
        ]

    # ----- first stage -----
    def _datasets(self) -> list[_PreparedDataset]:
        if self._prepared is None:
            self._prepared = [self._prepare(name, folder) for name, folder in self.folders.items()]
        return self._prepared

    def _prepare(self, dataset_name: str, folder: Path) -> _PreparedDataset:
        corpus, queries, qrels = load_beir(folder, self.splits[dataset_name])
        if not corpus:
            raise DataValidationError(f"BEIR dataset {dataset_name!r} ({folder}): the corpus is empty.")
        unknown_queries = sorted(set(qrels) - set(queries))
        if unknown_queries:
            logger.warning(
                "BEIR dataset %s: %d judged query ids are not in queries.jsonl (e.g. %r); they are skipped.",
                dataset_name,
                len(unknown_queries),
                unknown_queries[0],
            )
        unknown_docs = [doc for judged in qrels.values() for doc in judged if doc not in corpus]
        if unknown_docs:
            logger.warning(
                "BEIR dataset %s: %d judgments point to documents missing from the corpus (e.g. %r); they count "
                "as relevant documents never retrieved.",
                dataset_name,
                len(unknown_docs),
                unknown_docs[0],
            )
        evaluated = {
            query_id: text
            for query_id, text in queries.items()
            if query_id in qrels
            and any(grade > 0 for grade in qrels[query_id].values())
            and (self.queries is None or query_id in self.queries)
        }
        if not evaluated:
            raise DataValidationError(f"BEIR dataset {dataset_name!r} ({folder}): no query has a positive qrel.")
        if self.max_queries is not None and len(evaluated) > self.max_queries:
            keep = set(random.Random(self.query_seed).sample(sorted(evaluated), self.max_queries))
            evaluated = {query_id: text for query_id, text in evaluated.items() if query_id in keep}
        bm25 = BM25(k1=self.k1, b=self.b).fit(corpus, cache_dir=self.cache_dir if self.use_cache else None)
        prepared = []
        for query_id, text in evaluated.items():
            hits = bm25.search(text, self.top_k)
            judged = qrels[query_id]
            doc_ids = [doc_id for doc_id, _ in hits]
            retrieved = set(doc_ids)
            grades = np.array([judged.get(doc_id, 0) for doc_id in doc_ids], dtype=float)
            missing = [grade for doc_id, grade in judged.items() if doc_id not in retrieved]
            prepared.append(
                _PreparedQuery(
                    query_id=query_id,
                    text=text,
                    doc_ids=doc_ids,
                    bm25_scores=[score for _, score in hits],
                    grades=grades,
                    relevant=grades >= self.relevance_level,
                    missing_grades=[float(grade) for grade in missing],
                    missing_relevant=sum(grade >= self.relevance_level for grade in missing),
                )
            )
        corpus_texts = {doc_id: document_text(corpus[doc_id]) for query in prepared for doc_id in query.doc_ids}
        # The first stage's own order: strictly decreasing, so BM25 ties keep the search order.
        base_rows = [self._metrics(-np.arange(len(query.doc_ids), dtype=float), query) for query in prepared]
        base = {metric: float(np.mean([row[metric] for row in base_rows])) for metric in self.metric_names}
        logger.info("BEIR dataset %s: %d queries evaluated, BM25 %s.", dataset_name, len(prepared), base)
        return _PreparedDataset(dataset_name, corpus_texts, prepared, base)

    def _metrics(self, scores: np.ndarray, query: _PreparedQuery) -> dict[str, float]:
        return ranking_metrics(
            scores,
            query.grades,
            self.at_k,
            relevant=query.relevant,
            missing_grades=query.missing_grades,
            missing_relevant=query.missing_relevant,
        )

    # ----- runs (for baselines and cross-checks) -----
    def first_stage_runs(self) -> dict[str, dict[str, dict[str, float]]]:
        """BM25 top-k per dataset as trec_eval runs: ``{dataset: {query_id: {doc_id: score}}}``."""
        return {
            dataset.name: {
                query.query_id: dict(zip(query.doc_ids, query.bm25_scores, strict=True)) for query in dataset.queries
            }
            for dataset in self._datasets()
        }

    def rerank_runs(self, model: Any) -> dict[str, dict[str, dict[str, float]]]:
        """The model's scores of the BM25 top-k, per dataset, as trec_eval runs."""
        return {dataset.name: self._rerank(model, dataset)[0] for dataset in self._datasets()}

    def _rerank(self, model: Any, dataset: _PreparedDataset) -> tuple[dict[str, dict[str, float]], list[np.ndarray]]:
        pairs = [(query.text, dataset.corpus_texts[doc_id]) for query in dataset.queries for doc_id in query.doc_ids]
        scores = predict_scores(model, pairs, self.batch_size, self.show_progress_bar)
        if scores.ndim != 1:
            raise ValueError(f"CrossEncoderBEIREvaluator needs a model with one output per pair; got {scores.shape}.")
        per_query, run, start = [], {}, 0
        for query in dataset.queries:
            query_scores = scores[start : start + len(query.doc_ids)]
            start += len(query.doc_ids)
            per_query.append(query_scores)
            run[query.query_id] = {
                doc_id: float(score) for doc_id, score in zip(query.doc_ids, query_scores, strict=True)
            }
        return run, per_query

    # ----- evaluation -----
    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        metrics: dict[str, float] = {}
        per_dataset = []
        for dataset in self._datasets():
            _, per_query = self._rerank(model, dataset)
            rows = [self._metrics(scores, query) for scores, query in zip(per_query, dataset.queries, strict=True)]
            values = {metric: float(np.mean([row[metric] for row in rows])) for metric in self.metric_names}
            values.update({f"base_{metric}": value for metric, value in dataset.base.items()})
            per_dataset.append(values)
            metrics.update({f"{dataset.name}_{metric}": value for metric, value in values.items()})
        for metric in per_dataset[0]:
            metrics[f"mean_{metric}"] = float(np.mean([values[metric] for values in per_dataset]))
        results = self._finish(metrics, output_path, epoch, steps)
        logger.info("BEIR evaluation %s: %s", self.name, results)
        return results

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "datasets": list(self.folders),
            "splits": self.splits,
            "top_k": self.top_k,
            "at_k": self.at_k,
            "bm25": {"k1": self.k1, "b": self.b},
            "relevance_level": self.relevance_level,
            "max_queries": self.max_queries,
            "queries": None if self.queries is None else len(self.queries),
            "query_seed": self.query_seed,
        }
