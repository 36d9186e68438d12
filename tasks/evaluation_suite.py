"""The evaluators of ``evaluate.suite`` (see :mod:`tasks.evaluate_config`), built from the prepared data.

Each :class:`SuiteEvaluator` wraps one library evaluator whose result keys are ``<suite name>_<metric>``, knows
which files it read (for the evaluation data hash) and which baselines apply to it: the zero-shot bi-encoder
everywhere, BM25 where there is a ranking (reranking: BM25 over each query's candidates; beir: the BM25 first stage
itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation import (
    CrossEncoderBEIREvaluator,
    CrossEncoderClassificationEvaluator,
    CrossEncoderCorrelationEvaluator,
    CrossEncoderRerankingEvaluator,
)
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from tasks.catalog import DatasetEntry, read_prepared
from tasks.evaluate_config import (
    BeirEvaluation,
    ClassificationEvaluation,
    CorrelationEvaluation,
    EvaluateConfig,
    RerankingEvaluation,
)
from tasks.held_out import beir_folder, held_out_query_ids
from tasks.layout import Layout

BM25 = "bm25"
BI_ENCODER = "bi_encoder"


@dataclass
class SuiteEvaluator:
    """One evaluator of the suite, ready to score any model or baseline scorer."""

    name: str
    kind: str
    evaluator: Any
    first_stage: str  # what the base_* metrics rank by, in words ("" when there are none)
    samples: int
    files: list[Path]
    details: dict[str, Any] = field(default_factory=dict)  # for the report: dataset, split, thresholds, ...

    def __call__(self, scorer: Any) -> dict[str, float]:
        """The evaluator's metrics for ``scorer``, keyed ``<name>_<metric>`` (and ``<name>_base_<metric>``)."""
        results = self.evaluator(scorer, output_path=None)
        prefix = f"{self.name}_"
        keep = {key: float(value) for key, value in results.items() if key.startswith(prefix)}
        if not self.first_stage:
            keep = {key: value for key, value in keep.items() if not key.startswith(f"{prefix}base_")}
        return keep

    def baseline(self, which: str, scorer: Any, model_results: dict[str, float]) -> dict[str, float]:
        """A baseline's metrics under the model's own keys: BM25's beir numbers are the first stage's."""
        if self.kind == "beir" and which == BM25:
            base = f"{self.name}_base_"
            return {key.replace(base, f"{self.name}_"): value for key, value in model_results.items() if base in key}
        return {key: value for key, value in self(scorer).items() if "_base_" not in key}

    def pairs(self) -> list[tuple[str, str]]:
        """The (query, document) pairs this evaluator has the model score."""
        evaluator = self.evaluator
        if self.kind == "beir":
            return evaluator.candidate_pairs()
        if self.kind == "reranking":
            return [
                (sample["query"], document)
                for sample in evaluator.samples
                for document in sample.get("documents") or [*sample["positive"], *sample.get("negative", [])]
            ]
        return list(evaluator.sentence_pairs)

    def baselines(self) -> tuple[str, ...]:
        return (BM25, BI_ENCODER) if self.kind in ("reranking", "beir") else (BI_ENCODER,)


def build_suite(
    cfg: EvaluateConfig,
    prepared: Path,
    root: Path,
    bi_encoder: Any | None,
    bm25: Any | None = None,
    catalog: dict[str, DatasetEntry] | None = None,
) -> list[SuiteEvaluator]:
    """Every evaluator of the suite, in the order params lists them; data problems fail here, before any scoring.

    ``bi_encoder`` and ``bm25`` rank the candidates of reranking evaluators with those first stages; ``catalog``
    (``prepare.datasets``) resolves ``beir`` evaluators that hold out queries of a catalog entry.
    """
    built = []
    for name, spec in cfg.suite.items():
        if isinstance(spec, RerankingEvaluation):
            built.append(reranking(name, spec, cfg, Path(prepared), bi_encoder, bm25))
        elif isinstance(spec, ClassificationEvaluation):
            built.append(classification(name, spec, cfg, Path(prepared)))
        elif isinstance(spec, CorrelationEvaluation):
            built.append(correlation(name, spec, cfg, Path(prepared)))
        else:
            built.append(beir(name, spec, cfg, Path(root), catalog or {}))
    return built


def section_of(cfg: EvaluateConfig) -> str:
    """Which params section a suite belongs to, for error messages: ``evaluate`` or ``dev``."""
    return "evaluate" if type(cfg) is EvaluateConfig else "dev"


def prepared_split(
    prepared: Path, dataset: str, split: str, name: str, section: str = "evaluate"
) -> tuple[pd.DataFrame, Path]:
    path = prepared / dataset / f"{split}.parquet"
    if not path.is_file():
        raise DataValidationError(
            f"{section}.suite.{name}: {path} does not exist; run the prepare stage (`rerank stage prepare`)."
        )
    return read_prepared(prepared / dataset, split), path


def reranking(
    name: str,
    spec: RerankingEvaluation,
    cfg: EvaluateConfig,
    prepared: Path,
    bi_encoder: Any | None,
    bm25: Any | None = None,
) -> SuiteEvaluator:
    frame, path = prepared_split(prepared, spec.dataset, spec.split, name, section_of(cfg))
    listwise = "documents" in frame.columns
    if listwise:
        samples = [
            {"query": q, "documents": list(docs), "relevance": [float(x) for x in labels]}
            for q, docs, labels in zip(frame["query"], frame["documents"], frame["labels"], strict=True)
        ]
    else:
        samples = [
            {"query": q, "positive": list(pos), "negative": list(neg)}
            for q, pos, neg in zip(frame["query"], frame["positive"], frame["negative"], strict=True)
        ]
    samples = samples[: cfg.max_queries] if cfg.max_queries else samples
    scorer = {"bm25": bm25 or BM25Scorer(), "bi-encoder": bi_encoder}.get(spec.first_stage)
    if scorer is not None:
        samples = ordered_by(samples, scorer, cfg.batch_size)
    evaluator = CrossEncoderRerankingEvaluator(
        samples, at_k=cfg.at_k, name=name, batch_size=cfg.batch_size, show_progress_bar=True
    )
    described = {"bm25": "BM25", "bi-encoder": f"the bi-encoder {cfg.bi_encoder}", "file": "the file's order"}
    details = {"dataset": spec.dataset, "split": spec.split}
    return SuiteEvaluator(
        name, "reranking", evaluator, described.get(spec.first_stage, ""), len(samples), [path], details
    )


def ordered_by(samples: list[dict[str, Any]], scorer: Any, batch_size: int) -> list[dict[str, Any]]:
    """Each sample's candidates in the first stage's order, best first (its base_* metrics rank by this order)."""
    candidates = [s["documents"] if "documents" in s else s["positive"] + s["negative"] for s in samples]
    pairs = [(sample["query"], doc) for sample, docs in zip(samples, candidates, strict=True) for doc in docs]
    scores = np.asarray(scorer.predict(pairs, batch_size=batch_size, show_progress_bar=True), dtype=float)
    ranked, start = [], 0
    for sample, docs in zip(samples, candidates, strict=True):
        order = np.argsort(-scores[start : start + len(docs)], kind="stable")
        start += len(docs)
        if "relevance" in sample:
            ranked.append(
                {
                    "query": sample["query"],
                    "documents": [docs[i] for i in order],
                    "relevance": [sample["relevance"][i] for i in order],
                }
            )
        else:
            ranked.append(
                {"query": sample["query"], "positive": sample["positive"], "documents": [docs[i] for i in order]}
            )
    return ranked


def labelled_pairs(frame: pd.DataFrame, limit: int | None) -> tuple[list[tuple[str, str]], list[float]]:
    frame = frame.head(limit) if limit else frame
    return list(zip(frame["query"], frame["document"], strict=True)), [float(x) for x in frame["label"]]


def classification(name: str, spec: ClassificationEvaluation, cfg: EvaluateConfig, prepared: Path) -> SuiteEvaluator:
    frame, path = prepared_split(prepared, spec.dataset, spec.split, name, section_of(cfg))
    pairs, labels = labelled_pairs(frame, cfg.max_queries)
    files, threshold = [path], {}
    dev = prepared / spec.dataset / f"{spec.threshold_split}.parquet" if spec.threshold_split else None
    if dev is not None and dev.is_file() and spec.threshold_split != spec.split:
        dev_pairs, dev_labels = labelled_pairs(read_prepared(prepared / spec.dataset, spec.threshold_split), None)
        threshold = {"threshold_pairs": dev_pairs, "threshold_labels": dev_labels}
        files.append(dev)
    evaluator = CrossEncoderClassificationEvaluator(
        pairs, labels, name=name, batch_size=cfg.batch_size, show_progress_bar=True, **threshold
    )
    chosen_on = spec.threshold_split if threshold else f"{spec.split} (the evaluated split: no {spec.threshold_split})"
    details = {"dataset": spec.dataset, "split": spec.split, "thresholds_chosen_on": chosen_on}
    return SuiteEvaluator(name, "classification", evaluator, "", len(pairs), files, details)


def correlation(name: str, spec: CorrelationEvaluation, cfg: EvaluateConfig, prepared: Path) -> SuiteEvaluator:
    frame, path = prepared_split(prepared, spec.dataset, spec.split, name, section_of(cfg))
    pairs, scores = labelled_pairs(frame, cfg.max_queries)
    evaluator = CrossEncoderCorrelationEvaluator(
        pairs, scores, name=name, batch_size=cfg.batch_size, show_progress_bar=True
    )
    details = {"dataset": spec.dataset, "split": spec.split}
    return SuiteEvaluator(name, "correlation", evaluator, "", len(pairs), [path], details)


def beir(
    name: str, spec: BeirEvaluation, cfg: EvaluateConfig, root: Path, catalog: dict[str, DatasetEntry]
) -> SuiteEvaluator:
    section = section_of(cfg)
    if spec.dataset is not None and spec.dataset not in catalog:
        raise DataValidationError(f"{section}.suite.{name}: dataset {spec.dataset!r} is not in prepare.datasets.")
    folder = root / beir_folder(spec, catalog)
    qrels_split, queries, details = spec.split, None, {"folder": str(beir_folder(spec, catalog))}
    if spec.dataset is not None:
        qrels_split, queries = held_out_query_ids(catalog[spec.dataset], spec.split, root)
        details |= {"dataset": spec.dataset, "qrels": qrels_split, "held_out_queries": len(queries)}
    qrels = folder / "qrels" / f"{qrels_split}.tsv"
    if not qrels.is_file():
        raise DataValidationError(f"{section}.suite.{name}: {qrels} does not exist (folder {str(folder)!r}).")
    evaluator = CrossEncoderBEIREvaluator(
        {name: folder},
        split=qrels_split,
        top_k=spec.top_k,
        at_k=cfg.at_k,
        cache_dir=Layout(root).bm25_cache,
        batch_size=cfg.batch_size,
        show_progress_bar=True,
        max_queries=cfg.max_queries,
        queries=queries,
    )
    files = sorted(folder.glob("corpus.jsonl*")) + sorted(folder.glob("queries.jsonl*")) + [qrels]
    details |= {"split": spec.split, "top_k": spec.top_k}
    return SuiteEvaluator(name, "beir", evaluator, f"BM25 top {spec.top_k}", 0, files, details)
