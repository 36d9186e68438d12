"""CrossEncoderRerankingEvaluator on hand-built samples with chosen scores, and on the tiny real model."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from rerank_lib import CrossEncoder
from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator

LOG2_3 = math.log2(3)


def test_positive_negative_samples_by_hand(table_model, tmp_path: Path) -> None:
    # model order: p1, n1, p2, n2, n3 -> relevant at ranks 1 and 3
    model = table_model({"p1": 0.9, "n1": 0.8, "p2": 0.7, "n2": 0.2, "n3": 0.1})
    samples = [{"query": "q", "positive": ["p1", "p2"], "negative": ["n1", "n2", "n3"]}]
    evaluator = CrossEncoderRerankingEvaluator(samples, at_k=10, name="dev", batch_size=3, show_progress_bar=True)
    results = evaluator(model, output_path=str(tmp_path / "eval" / "nested"), epoch=1, steps=5)

    assert results["dev_map"] == pytest.approx((1 + 2 / 3) / 2)
    assert results["dev_mrr@10"] == 1.0
    assert results["dev_ndcg@10"] == pytest.approx((1 + 1 / 2) / (1 + 1 / LOG2_3))
    assert set(results) == {"dev_map", "dev_mrr@10", "dev_ndcg@10"}
    assert all(type(value) is float for value in results.values())
    assert evaluator.primary_metric == "dev_ndcg@10"
    assert model.calls == [{"pairs": 5, "batch_size": 3, "show_progress_bar": True}]

    csv_path = tmp_path / "eval" / "nested" / "CrossEncoderRerankingEvaluator_results_@10_dev.csv"
    evaluator(model, output_path=str(tmp_path / "eval" / "nested"), epoch=2, steps=10)
    rows = list(csv.DictReader(csv_path.open()))
    assert [(row["epoch"], row["steps"]) for row in rows] == [("1", "5"), ("2", "10")]
    assert float(rows[0]["dev_map"]) == pytest.approx(results["dev_map"])


def test_first_stage_documents_and_base_metrics(table_model) -> None:
    model = table_model({"n4": 0.5, "p3": 0.6, "n5": 0.1})
    samples = [{"query": "q", "positive": ["p3"], "documents": ["n4", "p3", "n5"]}]
    results = CrossEncoderRerankingEvaluator(samples)(model)
    assert (results["map"], results["mrr@10"], results["ndcg@10"]) == (1.0, 1.0, 1.0)
    assert results["base_map"] == pytest.approx(1 / 2)
    assert results["base_mrr@10"] == pytest.approx(1 / 2)
    assert results["base_ndcg@10"] == pytest.approx(1 / LOG2_3)


@pytest.mark.parametrize("always_rerank_positives", [True, False])
def test_positives_missing_from_the_first_stage(table_model, always_rerank_positives: bool) -> None:
    model = table_model({"n6": 0.3, "p4": 0.9, "p5": 0.95})
    samples = [{"query": "q", "positive": ["p4", "p5"], "documents": ["n6", "p4"]}]
    evaluator = CrossEncoderRerankingEvaluator(samples, always_rerank_positives=always_rerank_positives)
    results = evaluator(model)
    if always_rerank_positives:
        # p5 is added to the candidates: p5, p4, n6
        assert (results["map"], results["mrr@10"], results["ndcg@10"]) == (1.0, 1.0, 1.0)
        assert model.calls[0]["pairs"] == 3
    else:
        # p4, n6 ranked; p5 never retrieved
        assert results["map"] == pytest.approx(1 / 2)
        assert results["mrr@10"] == 1.0
        assert results["ndcg@10"] == pytest.approx(1 / (1 + 1 / LOG2_3))
        assert model.calls[0]["pairs"] == 2
    # the first stage missed p5 either way
    assert results["base_map"] == pytest.approx((1 / 2) / 2)
    assert results["base_mrr@10"] == pytest.approx(1 / 2)
    assert results["base_ndcg@10"] == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))


def test_graded_relevance(table_model) -> None:
    model = table_model({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.6})
    samples = [{"query": "q", "documents": ["a", "b", "c", "d"], "relevance": [0, 3, 1, 2]}]
    results = CrossEncoderRerankingEvaluator(samples, at_k=3)(model)
    # model order b(3), d(2), c(1), a(0) is ideal
    assert (results["map"], results["mrr@3"], results["ndcg@3"]) == (1.0, 1.0, 1.0)
    # first-stage order a(0), b(3), c(1), d(2)
    assert results["base_ndcg@3"] == pytest.approx((3 / LOG2_3 + 1 / 2) / (3 + 2 / LOG2_3 + 1 / 2))
    assert results["base_map"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)
    assert results["base_mrr@3"] == pytest.approx(1 / 2)


def test_graded_gains_differ_from_binary(table_model) -> None:
    # a grade-1 document above a grade-3 one costs more NDCG than two equal positives swapped
    model = table_model({"weak": 0.9, "strong": 0.1})
    graded = CrossEncoderRerankingEvaluator([{"query": "q", "documents": ["weak", "strong"], "relevance": [1, 3]}])
    assert graded(model)["ndcg@10"] == pytest.approx((1 + 3 / LOG2_3) / (3 + 1 / LOG2_3))


def test_samples_without_positives_are_skipped(table_model, caplog: pytest.LogCaptureFixture) -> None:
    model = table_model({"p": 0.9, "n": 0.1, "x": 0.5})
    samples = [
        {"query": "q1", "positive": ["p"], "negative": ["n"]},
        {"query": "q2", "positive": [], "negative": ["x"]},
        {"query": "q3", "documents": ["x"], "relevance": [0]},
    ]
    evaluator = CrossEncoderRerankingEvaluator(samples)
    assert evaluator.num_skipped == 2
    assert evaluator(model)["map"] == 1.0
    assert model.calls[0]["pairs"] == 2
    with pytest.raises(DataValidationError, match="no sample has a relevant document"):
        CrossEncoderRerankingEvaluator(samples[1:])


def test_constant_model_gets_the_random_order_expectation(table_model) -> None:
    model = table_model(lambda query, passage: 0.5)
    samples = [{"query": "q", "positive": ["p"], "negative": ["n1", "n2", "n3"]}]
    results = CrossEncoderRerankingEvaluator(samples)(model)
    assert results["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert results["ndcg@10"] < 1.0


def test_mean_over_queries(table_model) -> None:
    model = table_model({"p1": 0.9, "n1": 0.1, "p2": 0.1, "n2": 0.9})
    samples = [
        {"query": "q1", "positive": ["p1"], "negative": ["n1"]},
        {"query": "q2", "positive": ["p2"], "negative": ["n2"]},
    ]
    results = CrossEncoderRerankingEvaluator(samples)(model)
    assert results["mrr@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert "base_map" not in results  # no first-stage lists


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ({"positive": ["p"], "negative": []}, "sample 0: 'query'"),
        ({"query": "q"}, "sample 0 needs 'positive'"),
        ({"query": "q", "positive": [1], "negative": []}, r"sample 0: 'positive'\[0\] is a int"),
        ({"query": "q", "positive": ["p"], "negative": "n", "documents": 3}, "sample 0: 'documents' must be a list"),
        ({"query": "q", "documents": ["a", "b"], "relevance": [1]}, "sample 0: 'relevance' has 1 grades for 2"),
        ({"query": "q", "documents": ["a"], "relevance": ["high"]}, r"sample 0: 'relevance'\[0\] is 'high'"),
        ({"query": "q", "documents": ["a"], "relevance": [float("nan")]}, r"'relevance'\[0\] is nan"),
    ],
)
def test_invalid_samples_are_named(sample: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        CrossEncoderRerankingEvaluator([sample])


def test_multi_output_model_is_rejected(table_model) -> None:
    model = table_model(lambda query, passage: [0.1, 0.9], num_labels=2)
    with pytest.raises(ValueError, match="one output"):
        CrossEncoderRerankingEvaluator([{"query": "q", "positive": ["p"], "negative": ["n"]}])(model)


def test_real_model_is_deterministic(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    samples = [
        {"query": "what is the capital of france", "positive": ["paris is the capital"], "negative": ["a cat"]},
        {"query": "who reads a book", "positive": ["a child reads"], "documents": ["the dog runs", "a child reads"]},
    ]
    evaluator = CrossEncoderRerankingEvaluator(samples, at_k=1, name="tiny", batch_size=2)
    first = evaluator(tiny_model, output_path=str(tmp_path))
    assert first == evaluator(tiny_model)
    assert all(0.0 <= value <= 1.0 for value in first.values())
    assert evaluator.get_config_dict() == {"at_k": 1, "always_rerank_positives": True}
