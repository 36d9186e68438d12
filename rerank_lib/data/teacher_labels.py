"""Distillation targets: a teacher's scores added to the labels, so that the documents of one grade are ordered.

Binary labels say "answer" or "not", and every negative of a list ties with the others. Adding
``weight * teacher(query, document)`` orders them by how related the teacher finds them, which passes on what the
teacher knows about topical relevance: with the zero-shot bi-encoder as teacher, what it learnt from its own
training pairs, which the labelled lists alone do not teach. Teacher scores within ``[-1, 1]`` (cosine) and a weight
of at most 1 keep a positive (1 + score) above every negative (0 + score) of binary lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rerank_lib.data.checks import label_lists, label_values, list_values, prefix, require_rows, text_values
from rerank_lib.data.formats import DOCUMENT, DOCUMENTS, LABEL, LABELS, QUERY
from rerank_lib.errors import DataValidationError


def add_teacher_scores(
    frame: pd.DataFrame,
    teacher: Any,
    weight: float = 1.0,
    *,
    batch_size: int = 64,
    dataset_name: str | None = None,
) -> pd.DataFrame:
    """``frame`` with ``label += weight * teacher score`` (pairs) or the same for each item of ``labels`` (lists).

    Args:
        frame: labelled pairs (query, document, label) or listwise rows (query, documents, labels).
        teacher: anything with ``predict(pairs, batch_size=...)`` returning one score per (query, document) pair,
            e.g. :class:`~rerank_lib.bi_encoder.BiEncoderScorer` or a :class:`~rerank_lib.CrossEncoder`.
        weight: how much of the teacher's score is added to each label.
    """
    require_rows(frame, dataset_name)
    queries = text_values(frame, QUERY, dataset_name)
    if DOCUMENTS in frame.columns and LABELS in frame.columns:
        documents = list_values(frame, DOCUMENTS, dataset_name)
        labels = label_lists(frame, LABELS, [len(texts) for texts in documents], dataset_name)
        pairs = [(query, text) for query, texts in zip(queries, documents, strict=True) for text in texts]
        scores = _scores(teacher, pairs, batch_size, dataset_name)
        remaining = iter(scores)
        out = frame.copy()
        out[LABELS] = [[grade + weight * next(remaining) for grade in grades] for grades in labels]
        return out
    if DOCUMENT in frame.columns and LABEL in frame.columns:
        grades = label_values(frame, LABEL, dataset_name)
        scores = _scores(
            teacher,
            list(zip(queries, text_values(frame, DOCUMENT, dataset_name), strict=True)),
            batch_size,
            dataset_name,
        )
        out = frame.copy()
        out[LABEL] = [grade + weight * score for grade, score in zip(grades, scores, strict=True)]
        return out
    raise DataValidationError(
        f"{prefix(dataset_name)}: teacher scores need labelled pairs (query, document, label) or listwise rows "
        f"(query, documents, labels); found columns {list(frame.columns)}."
    )


def _scores(teacher: Any, pairs: list[tuple[str, str]], batch_size: int, dataset_name: str | None) -> list[float]:
    scores = np.asarray(teacher.predict(pairs, batch_size=batch_size), dtype=np.float64)
    if scores.shape != (len(pairs),) or not np.isfinite(scores).all():
        raise DataValidationError(
            f"{prefix(dataset_name)}: the teacher must give one finite score per pair; got shape {scores.shape} "
            f"for {len(pairs)} pairs."
        )
    return scores.tolist()
