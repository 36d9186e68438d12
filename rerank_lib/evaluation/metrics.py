"""Metric functions, kept free of models so they can be tested against hand computations and trec_eval.

Ranking conventions (the ones ``trec_eval``/``pytrec_eval`` and BEIR use, so the numbers are comparable):

* NDCG uses linear gains (``grade / log2(rank + 1)``); negative grades count as 0. The ideal ranking is built from
  every judged document, including relevant ones the ranking never retrieved, which therefore lower the score.
* MAP divides by the number of relevant documents, retrieved or not: a relevant document that was never ranked
  contributes a precision of 0.
* MRR@k is the reciprocal rank of the first relevant document within the top k, else 0.

Tied scores: :func:`ranking_metrics` returns the *expected* value of each metric over all orderings of the tied
documents (McSherry & Najork, ECIR 2008). A model that gives every candidate the same score therefore gets the
score of a random ordering, never a perfect one because the positives happened to be listed first. Without ties this
equals the usual definitions exactly.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

logger = logging.getLogger(__name__)

# ----- ranking metrics over one strictly ordered list (kept for callers that already hold a ranking) -----


def reciprocal_rank_at_k(ranked_relevance: Sequence[float], k: int) -> float:
    """1 / rank of the first relevant item (grade > 0) within the top k, else 0."""
    for rank, grade in enumerate(ranked_relevance[:k], start=1):
        if grade > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked_relevance: Sequence[float], k: int, all_relevance: Sequence[float] | None = None) -> float:
    """NDCG@k with linear gains (grade / log2(rank + 1)); ideal order from ``all_relevance``.

    ``all_relevance`` includes relevant items the ranking missed, so they lower the score.
    """
    ideal_source = ranked_relevance if all_relevance is None else all_relevance
    gains = np.clip(np.asarray(ranked_relevance[:k], dtype=float), 0.0, None)
    dcg = float((gains * _discounts(len(gains))).sum())
    idcg = _ideal_dcg(np.asarray(ideal_source, dtype=float), k)
    return dcg / idcg if idcg > 0 else 0.0


def average_precision(ranked_relevance: Sequence[float], num_relevant: int | None = None) -> float:
    """Mean of precision at each relevant position; relevant items never ranked count as misses."""
    hits = 0
    total = 0.0
    for rank, grade in enumerate(ranked_relevance, start=1):
        if grade > 0:
            hits += 1
            total += hits / rank
    denominator = num_relevant if num_relevant is not None else hits
    return total / denominator if denominator else 0.0


# ----- tie-aware ranking metrics from scores -----


def _discounts(length: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, length + 2, dtype=float))


def _ideal_dcg(grades: np.ndarray, k: int) -> float:
    ideal = np.sort(np.clip(grades, 0.0, None))[::-1][:k]
    return float((ideal * _discounts(len(ideal))).sum())


def ranking_metrics(
    scores: ArrayLike,
    grades: ArrayLike,
    k: int,
    relevant: ArrayLike | None = None,
    missing_grades: ArrayLike = (),
    missing_relevant: int | None = None,
) -> dict[str, float]:
    """MAP, MRR@k and NDCG@k of ranking the candidates by ``scores`` (higher is better), tie-aware.

    Args:
        scores: one score per candidate. NaN counts as the lowest possible score.
        grades: relevance grade per candidate; the NDCG gains.
        k: cut-off for MRR and NDCG (MAP is computed over the whole list, as trec_eval does).
        relevant: which candidates count as relevant for MAP and MRR; default ``grades > 0``.
        missing_grades: grades of judged documents that are not among the candidates (never retrieved).
        missing_relevant: how many of the missing documents are relevant; default: those with grade > 0.

    Returns ``{"map", f"mrr@{k}", f"ndcg@{k}"}``; all are 0 when nothing is relevant.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    score_array = np.asarray(scores, dtype=float).ravel()
    gain_array = np.clip(np.asarray(grades, dtype=float).ravel(), 0.0, None)
    if score_array.shape != gain_array.shape:
        raise ValueError(f"{len(score_array)} scores for {len(gain_array)} grades.")
    relevant_array = gain_array > 0 if relevant is None else np.asarray(relevant, dtype=bool).ravel()
    if relevant_array.shape != gain_array.shape:
        raise ValueError(f"{len(relevant_array)} relevance flags for {len(gain_array)} grades.")
    missing = np.asarray(missing_grades, dtype=float).ravel()
    if missing_relevant is None:
        missing_relevant = int((missing > 0).sum())
    num_relevant = int(relevant_array.sum()) + missing_relevant
    idcg = _ideal_dcg(np.concatenate([gain_array, missing]), k)
    empty = {"map": 0.0, f"mrr@{k}": 0.0, f"ndcg@{k}": 0.0}
    if score_array.size == 0:
        return empty

    score_array = np.where(np.isnan(score_array), -np.inf, score_array)
    order = np.argsort(-score_array, kind="stable")
    sorted_scores = score_array[order]
    gains = gain_array[order]
    is_relevant = relevant_array[order].astype(float)
    n = len(sorted_scores)

    # Tie groups: runs of equal scores. Every position p (1-based) knows its group's start, size and content.
    new_group = np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]])
    group_id = np.cumsum(new_group) - 1
    group_starts = np.flatnonzero(new_group)
    group_sizes = np.diff(np.append(group_starts, n))
    group_relevant = np.bincount(group_id, weights=is_relevant)
    group_gain_mean = np.bincount(group_id, weights=gains) / group_sizes
    relevant_before = np.cumsum(group_relevant) - group_relevant

    positions = np.arange(1, n + 1, dtype=float)
    size = group_sizes[group_id].astype(float)
    rel = group_relevant[group_id]
    index_in_group = positions - group_starts[group_id]  # 1-based

    # Expected DCG: each position holds the group's mean gain on average.
    top = positions <= k
    dcg = float((group_gain_mean[group_id][top] * _discounts(n)[top]).sum())

    # Expected AP: P(relevant at position) * E[precision there | relevant there].
    others = np.where(size > 1, (index_in_group - 1) * (rel - 1) / np.maximum(size - 1, 1), 0.0)
    precision_terms = (rel / size) * (relevant_before[group_id] + 1 + others) / positions
    ap = float(precision_terms.sum()) / num_relevant if num_relevant else 0.0

    # Expected reciprocal rank: only the first group holding a relevant document matters.
    rr = 0.0
    first = np.flatnonzero(group_relevant > 0)
    if first.size:
        group = first[0]
        start, count, hits = int(group_starts[group]), int(group_sizes[group]), int(group_relevant[group])
        none_yet = 1.0
        for j in range(1, count + 1):
            if start + j > k:
                break
            rr += none_yet * hits / (count - j + 1) / (start + j)
            none_yet *= (count - hits - (j - 1)) / (count - (j - 1))
            if none_yet <= 0:
                break

    return {"map": ap, f"mrr@{k}": rr, f"ndcg@{k}": dcg / idcg if idcg > 0 else 0.0}


# ----- binary classification from one score per pair -----


def binary_classification_metrics(scores: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Best accuracy and F1 over a threshold sweep, precision/recall at the best-F1 threshold, average precision.

    A pair is predicted positive when ``score > threshold``. Candidate thresholds are the midpoints between
    consecutive distinct scores, the highest score (nothing positive) and just below the lowest (everything
    positive). On equal metric values the highest threshold wins. Average precision is the step-wise area under
    the precision-recall curve with tied scores forming one step (scikit-learn's definition).
    """
    score_array = np.asarray(scores, dtype=float).ravel()
    label_array = np.asarray(labels, dtype=float).ravel()
    if score_array.shape != label_array.shape:
        raise ValueError(f"{len(score_array)} scores for {len(label_array)} labels.")
    if score_array.size == 0:
        raise ValueError("No scores to evaluate.")
    score_array = np.where(np.isnan(score_array), -np.inf, score_array)
    order = np.argsort(-score_array, kind="stable")
    sorted_scores = score_array[order]
    positive = label_array[order] > 0.5
    total = len(sorted_scores)
    num_positive = int(positive.sum())
    num_negative = total - num_positive

    # Cut after the last item of each tie group: predicted positive = everything up to and including the cut.
    last_of_group = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    true_pos = np.concatenate([[0], np.cumsum(positive)[last_of_group]]).astype(float)
    false_pos = np.concatenate([[0], np.cumsum(~positive)[last_of_group]]).astype(float)
    next_scores = np.append(sorted_scores[1:], np.nan)[last_of_group]
    cut_scores = sorted_scores[last_of_group]
    with np.errstate(invalid="ignore"):
        midpoints = np.where(np.isnan(next_scores), np.nextafter(cut_scores, -np.inf), (cut_scores + next_scores) / 2)
    thresholds = np.concatenate([[sorted_scores[0]], midpoints])

    accuracy = (true_pos + (num_negative - false_pos)) / total
    predicted = true_pos + false_pos
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = true_pos / num_positive if num_positive else np.zeros_like(true_pos)
    denominator = 2 * true_pos + false_pos + (num_positive - true_pos)
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)

    if num_positive:
        recall_steps = np.diff(recall)
        ap = float((recall_steps * precision[1:]).sum())
    else:
        ap = math.nan
    best_accuracy = int(np.argmax(accuracy))
    best_f1 = int(np.argmax(f1))
    return {
        "accuracy": float(accuracy[best_accuracy]),
        "accuracy_threshold": float(thresholds[best_accuracy]),
        "f1": float(f1[best_f1]),
        "f1_threshold": float(thresholds[best_f1]),
        "precision": float(precision[best_f1]),
        "recall": float(recall[best_f1]),
        "average_precision": ap,
    }


def binary_metrics_at_thresholds(
    scores: ArrayLike, labels: ArrayLike, accuracy_threshold: float, f1_threshold: float
) -> dict[str, float]:
    """Accuracy at ``accuracy_threshold``, F1/precision/recall at ``f1_threshold`` (a pair is positive when its score
    is above the threshold), and the threshold-free average precision: for thresholds chosen on other (dev) data.
    """
    score_array = np.asarray(scores, dtype=float).ravel()
    label_array = np.asarray(labels, dtype=float).ravel() > 0.5
    if score_array.shape != label_array.shape:
        raise ValueError(f"{len(score_array)} scores for {len(label_array)} labels.")
    score_array = np.where(np.isnan(score_array), -np.inf, score_array)
    accuracy = float(np.mean((score_array > accuracy_threshold) == label_array))
    predicted = score_array > f1_threshold
    true_pos = float(np.sum(predicted & label_array))
    precision = true_pos / predicted.sum() if predicted.any() else 0.0
    recall = true_pos / label_array.sum() if label_array.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    swept = binary_classification_metrics(score_array, label_array.astype(float))
    return {
        "accuracy": accuracy,
        "accuracy_threshold": float(accuracy_threshold),
        "f1": float(f1),
        "f1_threshold": float(f1_threshold),
        "precision": float(precision),
        "recall": float(recall),
        "average_precision": swept["average_precision"],
    }


def multiclass_classification_metrics(predictions: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Accuracy and macro/micro/weighted F1 of predicted class ids.

    Averages run over the classes that occur in the labels or the predictions (scikit-learn's convention); a class
    with no true and no predicted example has no defined F1 and is left out. A class's F1 is 0 when it is never
    predicted correctly.
    """
    predicted = np.asarray(predictions).ravel().astype(np.int64)
    truth = np.asarray(labels).ravel().astype(np.int64)
    if predicted.shape != truth.shape:
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} labels.")
    if truth.size == 0:
        raise ValueError("No predictions to evaluate.")
    classes = np.union1d(truth, predicted)
    true_pos = np.array([np.sum((predicted == c) & (truth == c)) for c in classes], dtype=float)
    false_pos = np.array([np.sum((predicted == c) & (truth != c)) for c in classes], dtype=float)
    false_neg = np.array([np.sum((predicted != c) & (truth == c)) for c in classes], dtype=float)
    support = true_pos + false_neg
    denominator = 2 * true_pos + false_pos + false_neg
    per_class = np.divide(2 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)
    micro_denominator = 2 * true_pos.sum() + false_pos.sum() + false_neg.sum()
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "f1_macro": float(per_class.mean()),
        "f1_micro": float(2 * true_pos.sum() / micro_denominator) if micro_denominator else 0.0,
        "f1_weighted": float((per_class * support).sum() / support.sum()) if support.sum() else 0.0,
    }


# ----- correlation -----


def correlation_metrics(predictions: ArrayLike, gold: ArrayLike) -> dict[str, float]:
    """Pearson and Spearman (average ranks for ties) correlation; NaN with a warning when a side is constant."""
    predicted = np.asarray(predictions, dtype=float).ravel()
    truth = np.asarray(gold, dtype=float).ravel()
    if predicted.shape != truth.shape:
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} gold scores.")
    if predicted.size < 2:
        raise ValueError("Correlation needs at least two pairs.")
    if np.ptp(predicted) == 0 or np.ptp(truth) == 0:
        logger.warning("Correlation is undefined: the %s scores are constant.", "model" if np.ptp(truth) else "gold")
        return {"pearson": math.nan, "spearman": math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pearson = float(stats.pearsonr(predicted, truth)[0])
        spearman = float(stats.spearmanr(predicted, truth)[0])
    return {"pearson": pearson, "spearman": spearman}
