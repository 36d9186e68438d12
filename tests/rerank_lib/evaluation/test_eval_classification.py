"""Classification and correlation evaluators, and their input checks."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder
from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation import CrossEncoderClassificationEvaluator, CrossEncoderCorrelationEvaluator

PAIRS = [("q", f"doc{i}") for i in range(6)]


def test_binary_classification(table_model, tmp_path: Path) -> None:
    scores = {"doc0": 0.2, "doc1": 0.9, "doc2": 0.6, "doc3": 0.1, "doc4": 0.8, "doc5": 0.7}
    model = table_model(scores)
    evaluator = CrossEncoderClassificationEvaluator(PAIRS, [0, 1, 1, 0, 0, 1], name="cls", batch_size=4)
    results = evaluator(model, output_path=str(tmp_path), epoch=0, steps=1)
    assert set(results) == {
        f"cls_{key}"
        for key in ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "average_precision")
    }
    assert results["cls_accuracy"] == pytest.approx(5 / 6)
    assert results["cls_f1"] == pytest.approx(6 / 7)
    assert results["cls_average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert evaluator.primary_metric == "cls_average_precision"
    assert model.calls == [{"pairs": 6, "batch_size": 4, "show_progress_bar": False}]
    rows = list(csv.DictReader((tmp_path / "CrossEncoderClassificationEvaluator_results_cls.csv").open()))
    assert len(rows) == 1 and float(rows[0]["cls_f1"]) == pytest.approx(6 / 7)


def test_multiclass_classification(table_model) -> None:
    logits = {f"doc{i}": np.eye(3)[c] for i, c in enumerate([0, 1, 1, 1, 0, 2])}
    evaluator = CrossEncoderClassificationEvaluator(PAIRS, [0, 0, 1, 1, 2, 2])
    assert evaluator.primary_metric == "f1_macro"
    results = evaluator(table_model(logits, num_labels=3))
    assert set(results) == {"accuracy", "f1_macro", "f1_micro", "f1_weighted"}
    assert results["accuracy"] == pytest.approx(4 / 6)
    assert results["f1_macro"] == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)


def test_primary_metric_follows_the_model(table_model) -> None:
    evaluator = CrossEncoderClassificationEvaluator(PAIRS[:2], [0, 1])
    assert evaluator.primary_metric == "average_precision"
    evaluator(table_model(lambda q, d: [0.2, 0.8], num_labels=2))
    assert evaluator.primary_metric == "f1_macro"


def test_real_models(tiny_model: CrossEncoder, tiny_multilabel_model: CrossEncoder) -> None:
    pairs = [("the cat", "a dog sleeps"), ("paris", "capital of france"), ("a song", "music"), ("a car", "a bus")]
    binary = CrossEncoderClassificationEvaluator(pairs, [0, 1, 1, 0])(tiny_model)
    assert 0 <= binary["average_precision"] <= 1 and 0.5 <= binary["accuracy"] <= 1
    multi = CrossEncoderClassificationEvaluator(pairs, [0, 1, 2, 1])(tiny_multilabel_model)
    assert 0 <= multi["f1_macro"] <= 1


def test_classification_input_checks(table_model) -> None:
    with pytest.raises(DataValidationError, match=r"sentence_pairs\[1\]"):
        CrossEncoderClassificationEvaluator([("a", "b"), ("a",)], [0, 1])
    with pytest.raises(DataValidationError, match=r"labels\[1\] is 0.5"):
        CrossEncoderClassificationEvaluator(PAIRS[:2], [0, 0.5])
    with pytest.raises(DataValidationError, match="2 labels for 3 pairs"):
        CrossEncoderClassificationEvaluator(PAIRS[:3], [0, 1])
    one_output = table_model(lambda q, d: 0.5)
    with pytest.raises(DataValidationError, match="pair 1 has label 2"):
        CrossEncoderClassificationEvaluator(PAIRS[:2], [0, 2])(one_output)
    with pytest.raises(DataValidationError, match="no pair has label 1"):
        CrossEncoderClassificationEvaluator(PAIRS[:2], [0, 0])(one_output)
    with pytest.raises(DataValidationError, match="label 3 of pair 1"):
        CrossEncoderClassificationEvaluator(PAIRS[:2], [0, 3])(table_model(lambda q, d: [0.1, 0.2, 0.7], num_labels=3))


def test_correlation(table_model, tmp_path: Path) -> None:
    gold = [0.0, 1.0, 2.0, 3.0]
    model = table_model({"doc0": 0.1, "doc1": 0.3, "doc2": 0.2, "doc3": 0.9})
    evaluator = CrossEncoderCorrelationEvaluator(PAIRS[:4], gold, name="sts")
    results = evaluator(model, output_path=str(tmp_path))
    # ranks (1, 3, 2, 4) vs (1, 2, 3, 4): Spearman = 1 - 6 * 2 / (4 * 15)
    assert results["sts_spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert results["sts_pearson"] == pytest.approx(np.corrcoef([0.1, 0.3, 0.2, 0.9], gold)[0, 1], rel=1e-6)
    assert evaluator.primary_metric == "sts_spearman"
    assert (tmp_path / "CrossEncoderCorrelationEvaluator_results_sts.csv").is_file()
    constant = evaluator(table_model(lambda q, d: 0.5))
    assert math.isnan(constant["sts_spearman"])


def test_correlation_input_checks() -> None:
    with pytest.raises(DataValidationError, match=r"scores\[1\]"):
        CrossEncoderCorrelationEvaluator(PAIRS[:2], [1.0, float("nan")])
    with pytest.raises(DataValidationError, match="two different values"):
        CrossEncoderCorrelationEvaluator(PAIRS[:2], [1.0, 1.0])
    with pytest.raises(DataValidationError, match="1 scores for 2 pairs"):
        CrossEncoderCorrelationEvaluator(PAIRS[:2], [1.0])
