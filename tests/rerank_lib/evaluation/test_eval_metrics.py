"""Metric functions against hand computations, a brute-force tie model, pytrec_eval and scikit-learn."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from rerank_lib.evaluation.metrics import (
    average_precision,
    binary_classification_metrics,
    correlation_metrics,
    multiclass_classification_metrics,
    ndcg_at_k,
    ranking_metrics,
    reciprocal_rank_at_k,
)

LOG2_3 = math.log2(3)


def strictly(grades: list[float]) -> np.ndarray:
    """Scores that rank the candidates in the given order, without ties."""
    return -np.arange(len(grades), dtype=float)


# ----- independent reference: plain loops over one strict ranking -----


def reference_ap(ranked: list[float], num_relevant: int) -> float:
    hits, total = 0, 0.0
    for position, grade in enumerate(ranked, start=1):
        if grade > 0:
            hits += 1
            total += hits / position
    return total / num_relevant if num_relevant else 0.0


def reference_rr(ranked: list[float], k: int) -> float:
    for position, grade in enumerate(ranked, start=1):
        if position > k:
            break
        if grade > 0:
            return 1 / position
    return 0.0


def reference_ndcg(ranked: list[float], k: int, all_grades: list[float]) -> float:
    dcg = sum(max(g, 0) / math.log2(p + 1) for p, g in enumerate(ranked[:k], start=1))
    ideal = sorted((max(g, 0) for g in all_grades), reverse=True)[:k]
    idcg = sum(g / math.log2(p + 1) for p, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def brute_force_tie_expectation(
    scores: list[float], grades: list[float], k: int, missing: list[float]
) -> dict[str, float]:
    """Average the strict metrics over every ordering of the tied candidates."""
    distinct = sorted(set(scores), reverse=True)
    groups = [[i for i, s in enumerate(scores) if s == value] for value in distinct]
    num_relevant = sum(g > 0 for g in grades) + sum(g > 0 for g in missing)
    all_grades = list(grades) + list(missing)
    totals = {"map": 0.0, f"mrr@{k}": 0.0, f"ndcg@{k}": 0.0}
    count = 0
    for orders in itertools.product(*(itertools.permutations(group) for group in groups)):
        ranked = [grades[i] for order in orders for i in order]
        totals["map"] += reference_ap(ranked, num_relevant)
        totals[f"mrr@{k}"] += reference_rr(ranked, k)
        totals[f"ndcg@{k}"] += reference_ndcg(ranked, k, all_grades)
        count += 1
    return {key: value / count for key, value in totals.items()}


# ----- hand-computed rankings -----


def test_binary_ranking_by_hand() -> None:
    # relevant at ranks 2 and 4 of 5
    result = ranking_metrics(strictly([0, 1, 0, 1, 0]), [0, 1, 0, 1, 0], k=10)
    assert result["map"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result["mrr@10"] == pytest.approx(1 / 2)
    assert result["ndcg@10"] == pytest.approx((1 / LOG2_3 + 1 / math.log2(5)) / (1 + 1 / LOG2_3))


def test_scores_order_the_candidates() -> None:
    # candidates given in arbitrary order; the scores put the relevant one (index 2) first
    result = ranking_metrics([0.1, 0.5, 0.9], [0, 0, 1], k=10)
    assert result == {"map": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}


def test_positives_beyond_k() -> None:
    result = ranking_metrics(strictly([0, 0, 1]), [0, 0, 1], k=2)
    assert result["mrr@2"] == 0.0
    assert result["ndcg@2"] == 0.0
    assert result["map"] == pytest.approx(1 / 3)  # MAP is not cut at k, as in trec_eval


def test_no_positives_give_zero() -> None:
    assert ranking_metrics([0.3, 0.2], [0, 0], k=10) == {"map": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}
    assert ranking_metrics([], [], k=5) == {"map": 0.0, "mrr@5": 0.0, "ndcg@5": 0.0}


def test_missing_relevant_documents_are_misses() -> None:
    # one relevant ranked first, one relevant never retrieved
    result = ranking_metrics(strictly([1, 0]), [1, 0], k=10, missing_grades=[1])
    assert result["map"] == pytest.approx(1 / 2)
    assert result["mrr@10"] == 1.0
    assert result["ndcg@10"] == pytest.approx(1 / (1 + 1 / LOG2_3))
    # nothing retrieved at all
    assert ranking_metrics([], [], k=10, missing_grades=[2])["ndcg@10"] == 0.0


def test_graded_gains_by_hand() -> None:
    grades = [1, 3, 0, 2]
    result = ranking_metrics(strictly(grades), grades, k=3)
    dcg = 1 + 3 / LOG2_3 + 0
    idcg = 3 + 2 / LOG2_3 + 1 / 2
    assert result["ndcg@3"] == pytest.approx(dcg / idcg)
    assert result["mrr@3"] == 1.0
    assert result["map"] == pytest.approx((1 / 1 + 2 / 2 + 3 / 4) / 3)
    # graded ideal includes a missing grade-3 document
    with_missing = ranking_metrics(strictly(grades), grades, k=3, missing_grades=[3])
    assert with_missing["ndcg@3"] == pytest.approx(dcg / (3 + 3 / LOG2_3 + 2 / 2))


def test_ties_by_hand() -> None:
    # two candidates tied, one relevant: either order is equally likely
    result = ranking_metrics([1.0, 1.0], [1, 0], k=10)
    assert result["map"] == pytest.approx(0.75)
    assert result["mrr@10"] == pytest.approx(0.75)
    assert result["ndcg@10"] == pytest.approx(0.5 + 0.5 / LOG2_3)
    # a constant model does not score perfectly just because positives come first
    constant = ranking_metrics([0.5] * 4, [1, 0, 0, 0], k=10)
    assert constant["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    # one clear winner, then three tied with two relevant: AP = mean of (RRN, RNR, NRR) = (7/12 + 1/2 + 5/12) / 3
    tied = ranking_metrics([2.0, 1.0, 1.0, 1.0], [0, 1, 1, 0], k=10)
    assert tied["map"] == pytest.approx(0.5)
    # ties straddling the cut-off: the relevant one is at rank 2 or 3 with equal chance, k=2
    assert ranking_metrics([3.0, 1.0, 1.0], [0, 1, 0], k=2)["mrr@2"] == pytest.approx(0.5 * 1 / 2)


def test_ties_match_brute_force_over_orderings() -> None:
    generator = random.Random(7)
    for _ in range(60):
        size = generator.randint(1, 7)
        scores = [float(generator.randint(0, 3)) for _ in range(size)]
        grades = [float(generator.choice([0, 0, 1, 2, 3])) for _ in range(size)]
        missing = [float(generator.choice([0, 1, 2])) for _ in range(generator.randint(0, 2))]
        k = generator.randint(1, 6)
        expected = brute_force_tie_expectation(scores, grades, k, missing)
        actual = ranking_metrics(scores, grades, k, missing_grades=missing)
        for key in expected:
            assert actual[key] == pytest.approx(expected[key], abs=1e-12), (scores, grades, missing, k, key)


def test_nan_scores_rank_last() -> None:
    result = ranking_metrics([float("nan"), 0.1], [1, 0], k=10)
    assert result["mrr@10"] == 0.5


def test_custom_relevance_flags() -> None:
    # TREC-DL style: grade 1 is not relevant for MAP/MRR at relevance level 2, but still a gain for NDCG
    grades = np.array([1, 2, 0])
    result = ranking_metrics(strictly(grades), grades, k=10, relevant=grades >= 2, missing_relevant=0)
    assert result["map"] == pytest.approx(1 / 2)
    assert result["mrr@10"] == pytest.approx(1 / 2)
    assert result["ndcg@10"] == pytest.approx((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3))


def test_strict_helpers_agree_with_ranking_metrics() -> None:
    ranked = [0, 2, 1, 0, 3]
    result = ranking_metrics(strictly(ranked), ranked, k=3, missing_grades=[1])
    assert average_precision(ranked, num_relevant=4) == pytest.approx(result["map"])
    assert reciprocal_rank_at_k(ranked, 3) == pytest.approx(result["mrr@3"])
    assert ndcg_at_k(ranked, 3, ranked + [1]) == pytest.approx(result["ndcg@3"])


# ----- cross-check with trec_eval (pytrec_eval) -----


def random_runs(seed: int) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """Runs without tied scores (trec_eval breaks ties by document id) and graded qrels with unretrieved docs."""
    generator = random.Random(seed)
    run, qrels = {}, {}
    for q in range(40):
        docs = [f"d{q}_{i}" for i in range(generator.randint(1, 30))]
        scores = generator.sample(range(10_000), len(docs))
        run[f"q{q}"] = {doc: float(score) / 7 for doc, score in zip(docs, scores, strict=True)}
        judged = {doc: generator.choice([0, 0, 0, 1, 2, 3]) for doc in docs if generator.random() < 0.5}
        judged.update({f"unretrieved{q}_{i}": generator.choice([0, 1, 3]) for i in range(generator.randint(0, 3))})
        if judged:
            qrels[f"q{q}"] = judged
    return run, qrels


def our_metrics(run: dict[str, float], judged: dict[str, int], k: int, level: int = 1) -> dict[str, float]:
    docs = list(run)
    grades = np.array([judged.get(doc, 0) for doc in docs], dtype=float)
    missing = [grade for doc, grade in judged.items() if doc not in run]
    return ranking_metrics(
        [run[doc] for doc in docs],
        grades,
        k,
        relevant=grades >= level,
        missing_grades=missing,
        missing_relevant=sum(grade >= level for grade in missing),
    )


@pytest.mark.parametrize("level", [1, 2])
def test_agrees_with_pytrec_eval(level: int) -> None:
    import pytrec_eval

    run, qrels = random_runs(seed=level)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"map", "ndcg_cut.5,10", "recip_rank"}, relevance_level=level)
    reference = evaluator.evaluate({query: docs for query, docs in run.items() if query in qrels})
    assert len(reference) > 20
    for query, expected in reference.items():
        at_10 = our_metrics(run[query], qrels[query], 10, level)
        at_5 = our_metrics(run[query], qrels[query], 5, level)
        uncut = our_metrics(run[query], qrels[query], 1000, level)
        assert at_10["map"] == pytest.approx(expected["map"], abs=1e-6), query
        assert at_10["ndcg@10"] == pytest.approx(expected["ndcg_cut_10"], abs=1e-6), query
        assert at_5["ndcg@5"] == pytest.approx(expected["ndcg_cut_5"], abs=1e-6), query
        assert uncut["mrr@1000"] == pytest.approx(expected["recip_rank"], abs=1e-6), query


def test_agrees_with_independent_reference_without_pytrec() -> None:
    run, qrels = random_runs(seed=3)
    for query, judged in qrels.items():
        docs = sorted(run[query], key=lambda doc: -run[query][doc])
        ranked = [float(judged.get(doc, 0)) for doc in docs]
        missing = [float(grade) for doc, grade in judged.items() if doc not in run[query]]
        num_relevant = sum(g > 0 for g in ranked + missing)
        ours = our_metrics(run[query], judged, 10)
        assert ours["map"] == pytest.approx(reference_ap(ranked, num_relevant), abs=1e-12)
        assert ours["mrr@10"] == pytest.approx(reference_rr(ranked, 10), abs=1e-12)
        assert ours["ndcg@10"] == pytest.approx(reference_ndcg(ranked, 10, ranked + missing), abs=1e-12)


# ----- classification -----


def test_binary_classification_by_hand() -> None:
    # sorted: 0.9(1) 0.8(0) 0.7(1) 0.6(1) 0.2(0) 0.1(0)
    scores = [0.2, 0.9, 0.6, 0.1, 0.8, 0.7]
    labels = [0, 1, 1, 0, 0, 1]
    result = binary_classification_metrics(scores, labels)
    # best accuracy: positives = top 4 -> 3 TP, 1 FP, 2 TN -> 5/6; threshold between 0.6 and 0.2
    assert result["accuracy"] == pytest.approx(5 / 6)
    assert result["accuracy_threshold"] == pytest.approx(0.4)
    # best F1 also at the top 4: P = 3/4, R = 1 -> F1 = 6/7
    assert result["f1"] == pytest.approx(6 / 7)
    assert result["f1_threshold"] == pytest.approx(0.4)
    assert result["precision"] == pytest.approx(3 / 4)
    assert result["recall"] == 1.0
    assert result["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_binary_thresholds_at_the_extremes() -> None:
    # all negatives score highest: best accuracy predicts nothing positive
    result = binary_classification_metrics([0.9, 0.8, 0.1], [0, 0, 1])
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["accuracy_threshold"] == pytest.approx(0.9)
    # everything positive: threshold just below the lowest score
    everything = binary_classification_metrics([0.5, 0.5], [1, 1])
    assert everything["accuracy"] == 1.0 and everything["f1"] == 1.0
    assert everything["accuracy_threshold"] < 0.5 and everything["accuracy_threshold"] == pytest.approx(0.5)


def test_binary_classification_agrees_with_sklearn() -> None:
    from sklearn import metrics

    generator = np.random.default_rng(0)
    for trial in range(20):
        labels = generator.integers(0, 2, size=40)
        labels[0] = 1
        scores = np.round(generator.random(40), 1 if trial % 2 else 6)  # half the trials with many ties
        result = binary_classification_metrics(scores, labels)
        assert result["average_precision"] == pytest.approx(metrics.average_precision_score(labels, scores))
        predicted = scores > result["f1_threshold"]
        assert result["f1"] == pytest.approx(metrics.f1_score(labels, predicted))
        assert result["precision"] == pytest.approx(metrics.precision_score(labels, predicted, zero_division=0))
        assert result["recall"] == pytest.approx(metrics.recall_score(labels, predicted))
        assert result["accuracy"] == pytest.approx(
            metrics.accuracy_score(labels, scores > result["accuracy_threshold"])
        )
        # no threshold does better than the reported ones
        for threshold in np.append(scores, -1):
            assert metrics.accuracy_score(labels, scores >= threshold) <= result["accuracy"] + 1e-12
            assert metrics.f1_score(labels, scores >= threshold, zero_division=0) <= result["f1"] + 1e-12


def test_multiclass_by_hand() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 0, 2]
    result = multiclass_classification_metrics(predicted, labels)
    f1 = [2 / 4, 4 / 5, 2 / 3]  # 2TP / (2TP + FP + FN): class 0: TP1 FP1 FN1; 1: TP2 FP1 FN0; 2: TP1 FP0 FN1
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["f1_macro"] == pytest.approx(sum(f1) / 3)
    assert result["f1_micro"] == pytest.approx(4 / 6)
    assert result["f1_weighted"] == pytest.approx(sum(f1) / 3)


def test_multiclass_agrees_with_sklearn() -> None:
    from sklearn import metrics

    generator = np.random.default_rng(1)
    for _ in range(10):
        labels = generator.integers(0, 4, size=30)
        predicted = generator.integers(0, 3, size=30)  # class 3 never predicted
        result = multiclass_classification_metrics(predicted, labels)
        for average in ("macro", "micro", "weighted"):
            expected = metrics.f1_score(labels, predicted, average=average, zero_division=0)
            assert result[f"f1_{average}"] == pytest.approx(expected)


# ----- correlation -----


def test_correlation_by_hand() -> None:
    result = correlation_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0])
    assert result["spearman"] == pytest.approx(1.0)
    assert result["pearson"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [2, 4, 6, 9])[0, 1])
    # ties get average ranks: ranks (1.5, 1.5, 3) vs (1, 2, 3)
    tied = correlation_metrics([1.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    assert tied["spearman"] == pytest.approx(np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1])


def test_correlation_of_constant_predictions_is_nan() -> None:
    result = correlation_metrics([0.5, 0.5, 0.5], [1.0, 2.0, 3.0])
    assert math.isnan(result["pearson"]) and math.isnan(result["spearman"])
