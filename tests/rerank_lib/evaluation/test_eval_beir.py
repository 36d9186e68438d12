"""BEIR loading and the BM25-first-stage reranking evaluator on tiny folders, cross-checked with pytrec_eval."""

from __future__ import annotations

import csv
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder
from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation import CrossEncoderBEIREvaluator
from rerank_lib.retrieval import load_beir

LOG2_3 = math.log2(3)


def by_title(scores: dict[str, float]):
    """A model scoring a passage by its first word (the title in SciFact-like data)."""
    return lambda query, passage: scores[passage.split()[0]]


def pseudo_random(query: str, passage: str) -> float:
    """Distinct, deterministic scores (trec_eval would break ties by document id)."""
    return zlib.crc32(f"{query}|{passage}".encode()) / 2**32


def test_metrics_by_hand(scifact: Path, tmp_path: Path, table_model, caplog: pytest.LogCaptureFixture) -> None:
    # BM25 top lists: q1 -> d3 (relevant), d4; q2 -> d2, d5 (both relevant); q3 -> d6 (d99 never retrieved)
    model = table_model(by_title({"Paris": 0.2, "Berlin": 0.9, "Dogs": 0.1, "Rivers": 0.8, "Music": 0.5}))
    evaluator = CrossEncoderBEIREvaluator(
        [scifact], top_k=5, cache_dir=tmp_path / "cache", name="beir", batch_size=8, show_progress_bar=True
    )
    results = evaluator(model, output_path=str(tmp_path / "out"), epoch=1, steps=3)
    assert evaluator.num_queries == {"scifact": 3}
    assert "1 judgments point to documents missing from the corpus (e.g. 'd99')" in caplog.text
    assert "1 judged query ids are not in queries.jsonl (e.g. 'q9')" in caplog.text

    missing_ndcg = 1 / (1 + 1 / LOG2_3)  # q3: one of two relevant documents ranked first
    assert results["beir_scifact_base_map"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    assert results["beir_scifact_base_mrr@10"] == pytest.approx(1.0)
    assert results["beir_scifact_base_ndcg@10"] == pytest.approx((1 + 1 + missing_ndcg) / 3)
    # the model puts Berlin above Paris for q1
    assert results["beir_scifact_map"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert results["beir_scifact_mrr@10"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert results["beir_scifact_ndcg@10"] == pytest.approx((1 / LOG2_3 + 1 + missing_ndcg) / 3)
    # one dataset: the mean is the dataset
    assert results["beir_mean_ndcg@10"] == results["beir_scifact_ndcg@10"]
    assert results["beir_mean_base_map"] == results["beir_scifact_base_map"]
    assert evaluator.primary_metric == "beir_mean_ndcg@10"
    assert model.calls == [{"pairs": 5, "batch_size": 8, "show_progress_bar": True}]
    assert len([entry for entry in (tmp_path / "cache").iterdir() if entry.is_dir()]) == 1  # the BM25 index
    rows = list(csv.DictReader((tmp_path / "out" / "CrossEncoderBEIREvaluator_results_beir.csv").open()))
    assert rows[0]["beir_mean_ndcg@10"] and rows[0]["epoch"] == "1"


def test_agrees_with_pytrec_eval(scifact: Path, dl19: Path, tmp_path: Path, table_model) -> None:
    import pytrec_eval

    model = table_model(pseudo_random)
    for level in (1, 2):
        evaluator = CrossEncoderBEIREvaluator(
            {"scifact": scifact, "dl19": dl19}, top_k=5, relevance_level=level, cache_dir=tmp_path
        )
        results = evaluator(model)
        reranked = evaluator.rerank_runs(model)
        first_stage = evaluator.first_stage_runs()
        means = {}
        for name, folder in (("scifact", scifact), ("dl19", dl19)):
            qrels = {query: judged for query, judged in load_beir(folder)[2].items() if query in reranked[name]}
            trec = pytrec_eval.RelevanceEvaluator(qrels, {"map", "ndcg_cut.10", "recip_rank"}, relevance_level=level)
            # the first stage is scored on its order: give trec_eval rank-based scores so ties cannot reorder it
            base_run = {q: {doc: -rank for rank, doc in enumerate(docs)} for q, docs in first_stage[name].items()}
            for prefix, run in (("", reranked[name]), ("base_", base_run)):
                per_query = trec.evaluate(run)
                assert set(per_query) == set(run)
                for ours, theirs in (("map", "map"), ("ndcg@10", "ndcg_cut_10"), ("mrr@10", "recip_rank")):
                    expected = float(np.mean([values[theirs] for values in per_query.values()]))
                    assert results[f"{name}_{prefix}{ours}"] == pytest.approx(expected, abs=1e-6), (level, name)
                    means.setdefault(f"{prefix}{ours}", []).append(expected)
        for metric, values in means.items():
            assert results[f"mean_{metric}"] == pytest.approx(np.mean(values), abs=1e-6)


def test_graded_qrels_use_graded_gains(dl19: Path, tmp_path: Path, table_model) -> None:
    # t1 candidates p1(3), p2(2), p3(1), p5(0) and more; a model that prefers p3 over p1 loses graded NDCG
    model = table_model(lambda query, passage: {"france is a country": 0.9}.get(passage, 0.1))
    evaluator = CrossEncoderBEIREvaluator([dl19], top_k=10, cache_dir=tmp_path, relevance_level=2)
    reranked = evaluator.rerank_runs(model)["dl19"]["t1"]
    assert max(reranked, key=reranked.get) == "p3"
    results = evaluator(model)
    assert evaluator.num_queries == {"dl19": 2}
    assert 0 < results["dl19_ndcg@10"] < 1


def test_real_model_and_options(scifact: Path, dl19: Path, tmp_path: Path, tiny_model: CrossEncoder) -> None:
    evaluator = CrossEncoderBEIREvaluator([scifact, dl19], top_k=3, at_k=2, use_cache=False, cache_dir=tmp_path / "c")
    results = evaluator(tiny_model)
    assert {"scifact_mrr@2", "dl19_ndcg@2", "mean_map", "mean_base_ndcg@2"} <= set(results)
    assert all(0.0 <= value <= 1.0 for value in results.values())
    assert not (tmp_path / "c").exists()
    assert evaluator.get_config_dict()["bm25"] == {"k1": 0.9, "b": 0.4}


def test_configuration_errors(scifact: Path, tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="two datasets are named 'scifact'"):
        CrossEncoderBEIREvaluator([scifact, scifact])
    with pytest.raises(ValueError, match="relevance_level"):
        CrossEncoderBEIREvaluator([scifact], relevance_level=0)
    empty_qrels = CrossEncoderBEIREvaluator({"s": scifact}, split="dev")
    (scifact / "qrels" / "dev.tsv").write_text("q5\td1\t0\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="no query has a positive qrel"):
        assert empty_qrels.num_queries


def test_max_queries_scores_the_same_seeded_subset_every_time(scifact: Path, tmp_path: Path, table_model) -> None:
    model = table_model(pseudo_random)
    full = CrossEncoderBEIREvaluator([scifact], top_k=5, cache_dir=tmp_path / "cache", write_csv=False)
    full(model)
    per_query_pairs = {query.query_id: len(query.doc_ids) for query in full._datasets()[0].queries}
    assert sorted(per_query_pairs) == ["q1", "q2", "q3"]

    subsets = []
    for _ in range(2):
        evaluator = CrossEncoderBEIREvaluator(
            [scifact], top_k=5, cache_dir=tmp_path / "cache", write_csv=False, max_queries=2, query_seed=7
        )
        model.calls.clear()
        evaluator(model)
        kept = [query.query_id for query in evaluator._datasets()[0].queries]
        assert evaluator.num_queries == {"scifact": 2}
        assert model.calls[0]["pairs"] == sum(per_query_pairs[query_id] for query_id in kept)
        subsets.append(kept)
    assert subsets[0] == subsets[1]
    assert evaluator.get_config_dict()["max_queries"] == 2
    larger = CrossEncoderBEIREvaluator([scifact], top_k=5, cache_dir=tmp_path / "cache", max_queries=10)
    assert larger.num_queries == {"scifact": 3}  # a limit above the number of queries keeps them all
    with pytest.raises(ValueError, match="max_queries must be at least 1"):
        CrossEncoderBEIREvaluator([scifact], max_queries=0)


def test_queries_keeps_only_the_named_judged_queries(scifact: Path, tmp_path: Path, table_model) -> None:
    model = table_model(pseudo_random)
    held_out = CrossEncoderBEIREvaluator(
        [scifact], top_k=5, cache_dir=tmp_path / "cache", write_csv=False, queries=["q2", "q3", "not-judged"]
    )
    held_out(model)
    assert [query.query_id for query in held_out._datasets()[0].queries] == ["q2", "q3"]
    assert held_out.get_config_dict()["queries"] == 3
    assert model.calls[-1]["pairs"] == sum(len(query.doc_ids) for query in held_out._datasets()[0].queries)
    with pytest.raises(DataValidationError, match="no query has a positive qrel"):
        assert CrossEncoderBEIREvaluator([scifact], top_k=5, cache_dir=tmp_path / "cache", queries=["q9"]).num_queries
