"""BEIR loading and the BM25-first-stage reranking evaluator on tiny folders, cross-checked with pytrec_eval."""

from __future__ import annotations

import csv
import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from rerank_lib import CrossEncoder
from rerank_lib.errors import DataValidationError
from rerank_lib.evaluation import CrossEncoderBEIREvaluator, load_beir

LOG2_3 = math.log2(3)

SCIFACT_CORPUS = {
    "d1": ("Cats", "the cat sleeps on the red mat"),
    "d2": ("Dogs", "a dog runs in the green park"),
    "d3": ("Paris", "paris is the capital city of france"),
    "d4": ("Berlin", "berlin is the capital city of germany"),
    "d5": ("Rivers", "the river runs through the city"),
    "d6": ("Music", "a song and music for a child"),
    "d7": ("Trains", "the train and the bus in the city"),
}
SCIFACT_QUERIES = {
    "q1": "capital of france",
    "q2": "which dog runs",
    "q3": "music song",
    "q4": "city train",  # no qrels: not evaluated
    "q5": "cat",  # only a grade-0 judgment: not evaluated
}
SCIFACT_QRELS = [
    ("q1", "d3", 1),
    ("q2", "d2", 1),
    ("q2", "d5", 1),
    ("q3", "d6", 1),
    ("q3", "d99", 1),  # a judged document missing from the corpus: a relevant document never retrieved
    ("q5", "d1", 0),
    ("q9", "d1", 1),  # a query missing from queries.jsonl
]

DL19_CORPUS = {
    "p1": ("", "the capital of france is paris"),
    "p2": ("", "paris is a big city in france"),
    "p3": ("", "france is a country"),
    "p4": ("", "a small river in france"),
    "p5": ("", "the capital of germany is berlin"),
    "p6": ("", "rome is the capital of italy"),
}
DL19_QUERIES = {"t1": "what is the capital of france", "t2": "a river in germany"}
DL19_QRELS = [
    ("t1", "p1", 3),
    ("t1", "p2", 2),
    ("t1", "p3", 1),
    ("t1", "p5", 0),
    ("t2", "p4", 1),
    ("t2", "p5", 2),
    ("t2", "p6", 0),
]


@pytest.fixture
def scifact(tmp_path: Path, beir_writer) -> Path:
    return beir_writer(tmp_path / "scifact", SCIFACT_CORPUS, SCIFACT_QUERIES, SCIFACT_QRELS, gzip_corpus=True)


@pytest.fixture
def dl19(tmp_path: Path, beir_writer) -> Path:
    return beir_writer(tmp_path / "dl19", DL19_CORPUS, DL19_QUERIES, DL19_QRELS, qrels_header=False)


def by_title(scores: dict[str, float]):
    """A model scoring a passage by its first word (the title in SciFact-like data)."""
    return lambda query, passage: scores[passage.split()[0]]


def pseudo_random(query: str, passage: str) -> float:
    """Distinct, deterministic scores (trec_eval would break ties by document id)."""
    return zlib.crc32(f"{query}|{passage}".encode()) / 2**32


# ----- loading -----


def test_load_beir_reads_gzip_corpus_and_header_qrels(scifact: Path) -> None:
    corpus, queries, qrels = load_beir(scifact, "test")
    assert corpus["d3"] == {"title": "Paris", "text": "paris is the capital city of france"}
    assert len(corpus) == 7 and len(queries) == 5
    assert qrels["q2"] == {"d2": 1, "d5": 1}
    assert qrels["q3"] == {"d6": 1, "d99": 1}
    assert "q4" not in qrels


def test_load_beir_reads_qrels_without_header_and_trec_layout(dl19: Path) -> None:
    _, _, qrels = load_beir(dl19)
    assert qrels["t1"] == {"p1": 3, "p2": 2, "p3": 1, "p5": 0}
    (dl19 / "qrels" / "dev.tsv").write_text("t1 0 p1 3\nt2 0 p4 1\n", encoding="utf-8")
    assert load_beir(dl19, "dev")[2] == {"t1": {"p1": 3}, "t2": {"p4": 1}}


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n', r"corpus.jsonl, line 2: invalid JSON"),
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"text": "no id"}\n', r"corpus.jsonl, line 2: missing or empty"),
        ("corpus.jsonl", '{"_id": "d1"}\n{"_id": "d1"}\n', r"line 2: duplicate corpus id 'd1'"),
        ("queries.jsonl", '["not", "an", "object"]\n', r"queries.jsonl, line 1: expected a JSON object"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n", r"line 3: score 'high'"),
        ("qrels/test.tsv", "q1\td1\t1\nq2\td2\n", r"test.tsv, line 2: expected 'query-id, corpus-id, score'"),
        ("qrels/test.tsv", "q1\td1\t1.5\n", r"line 1: score '1.5' of query 'q1' is not an integer"),
        ("qrels/test.tsv", "q1\td1\tnan\n", r"line 1: score 'nan' of query 'q1' is not an integer"),
    ],
)
def test_load_beir_names_the_bad_line(scifact: Path, file_name: str, content: str, message: str) -> None:
    if file_name == "corpus.jsonl":
        (scifact / "corpus.jsonl.gz").unlink()
    (scifact / file_name).write_text(content, encoding="utf-8")
    with pytest.raises(DataValidationError, match=message):
        load_beir(scifact)


def test_load_beir_tolerates_bom_and_blank_lines(scifact: Path) -> None:
    (scifact / "qrels" / "test.tsv").write_text("\ufeff\nquery-id\tcorpus-id\tscore\n\nq1\td3\t2\n", encoding="utf-8")
    assert load_beir(scifact)[2] == {"q1": {"d3": 2}}
    (scifact / "qrels" / "test.tsv").write_text("\ufeffq1\td3\t1\n", encoding="utf-8")
    assert load_beir(scifact)[2] == {"q1": {"d3": 1}}


def test_load_beir_missing_files(tmp_path: Path, scifact: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(DataValidationError, match="dev.tsv"):
        load_beir(scifact, "dev")


def test_gzipped_queries_are_read(scifact: Path) -> None:
    text = (scifact / "queries.jsonl").read_text(encoding="utf-8")
    (scifact / "queries.jsonl").unlink()
    with gzip.open(scifact / "queries.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    assert len(load_beir(scifact)[1]) == 5


# ----- evaluation -----


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
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
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
