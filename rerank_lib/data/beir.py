"""BEIR folders (SciFact, TREC-DL19) as tables: one row per judgment, or one graded list per judged query.

Reading is :func:`rerank_lib.retrieval.beir.load_beir` (header-or-not qrels, gzip corpora); documents are
``title + text`` as the BM25 first stage and the evaluator read them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from rerank_lib.data.formats import pairs_to_listwise
from rerank_lib.errors import DataValidationError
from rerank_lib.retrieval.beir import document_text, load_beir

logger = logging.getLogger(__name__)

JUDGMENT_COLUMNS = ["query_id", "doc_id", "query", "document", "label"]


def read_beir_corpus(folder: str | os.PathLike) -> dict[str, str]:
    """``{doc_id: "title text"}`` of a BEIR folder's corpus, in file order."""
    corpus, _, _ = load_beir(folder, split=_any_split(Path(folder)))
    return {doc_id: document_text(document) for doc_id, document in corpus.items()}


def _any_split(folder: Path) -> str:
    qrels = sorted((folder / "qrels").glob("*.tsv*")) if (folder / "qrels").is_dir() else []
    if not qrels:
        raise DataValidationError(f"BEIR folder {folder}: no qrels/<split>.tsv file.")
    return qrels[0].name.split(".")[0]


def read_beir_judgments(folder: str | os.PathLike, split: str, dataset: str | None = None) -> pd.DataFrame:
    """One row per judgment of ``qrels/<split>.tsv``: ``(query_id, doc_id, query, document, label)``.

    Judgments of queries or documents missing from the folder cannot be turned into text pairs; they are skipped
    and counted in ``attrs["skipped_judgments"]`` (with a warning).
    """
    corpus, queries, qrels = load_beir(folder, split)
    rows, skipped = [], 0
    for query_id, judged in qrels.items():
        for doc_id, grade in judged.items():
            if query_id not in queries or doc_id not in corpus:
                skipped += 1
                continue
            rows.append((query_id, doc_id, queries[query_id], document_text(corpus[doc_id]), float(grade)))
    if skipped:
        logger.warning("%s: skipped %d judgments of unknown queries or documents.", dataset or folder, skipped)
    if not rows:
        raise DataValidationError(f"dataset {dataset or str(folder)!r}: qrels/{split}.tsv has no usable judgment.")
    frame = pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)
    frame.attrs = {"skipped_judgments": skipped, "queries": len(queries), "corpus": len(corpus)}
    return frame


def read_beir_listwise(folder: str | os.PathLike, split: str, dataset: str | None = None) -> pd.DataFrame:
    """One row per judged query: ``(query, [judged documents], [grades])``, in qrels order."""
    judgments = read_beir_judgments(folder, split, dataset)
    return pairs_to_listwise(judgments, group_by="query_id", dataset=dataset)
