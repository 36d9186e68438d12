"""SequentialEvaluator: merging, primary metric choice, key clashes."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from rerank_lib.errors import ConfigError
from rerank_lib.evaluation import (
    CrossEncoderClassificationEvaluator,
    CrossEncoderRerankingEvaluator,
    SequentialEvaluator,
)


@pytest.fixture
def parts(table_model):
    model = table_model({"p": 0.9, "n": 0.5, "m": 0.7})
    reranking = CrossEncoderRerankingEvaluator(
        [{"query": "q", "positive": ["p"], "negative": ["n", "m"]}], name="rerank"
    )
    classification = CrossEncoderClassificationEvaluator([("q", "p"), ("q", "n"), ("q", "m")], [1, 0, 1], name="cls")
    return model, reranking, classification


def test_merges_results_and_defaults_to_the_last_primary(parts, tmp_path: Path) -> None:
    model, reranking, classification = parts
    sequential = SequentialEvaluator([reranking, classification])
    results = sequential(model, output_path=str(tmp_path), epoch=1, steps=2)
    assert results["rerank_ndcg@10"] == 1.0 and "cls_average_precision" in results
    assert sequential.primary_metric == "cls_average_precision"
    # each part wrote its CSV, and the merged row went to the sequential file
    assert (tmp_path / "CrossEncoderRerankingEvaluator_results_@10_rerank.csv").is_file()
    assert (tmp_path / "CrossEncoderClassificationEvaluator_results_cls.csv").is_file()
    rows = list(csv.DictReader((tmp_path / "SequentialEvaluator_results.csv").open()))
    assert set(rows[0]) == {"epoch", "steps", *results}
    assert [entry["type"] for entry in sequential.get_config_dict()["evaluators"]] == [
        "CrossEncoderRerankingEvaluator",
        "CrossEncoderClassificationEvaluator",
    ]


def test_main_score_function_and_explicit_primary(parts) -> None:
    model, reranking, classification = parts
    combined = SequentialEvaluator([reranking, classification], main_score_function=statistics.mean, name="all")
    results = combined(model)
    assert combined.primary_metric == "all_sequential_score"
    expected = statistics.mean([results["rerank_ndcg@10"], results["cls_average_precision"]])
    assert results["all_sequential_score"] == pytest.approx(expected)

    chosen = SequentialEvaluator([reranking, classification], primary_metric="rerank_map")
    assert chosen.primary_metric == "rerank_map"
    chosen(model)
    with pytest.raises(ConfigError, match="'rerank_nope' is not in the results"):
        SequentialEvaluator([reranking], primary_metric="rerank_nope")(model)
    with pytest.raises(ConfigError, match="either"):
        SequentialEvaluator([reranking], main_score_function=max, primary_metric="rerank_map")


def test_key_clash_is_an_error(parts) -> None:
    model, reranking, _ = parts
    with pytest.raises(ConfigError, match="'rerank_map', already reported"):
        SequentialEvaluator([reranking, reranking])(model)
