"""Readers on the real team data: row counts and label distributions as stated in ../shared/DATA.md."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from rerank_lib.data import (
    read_beir_corpus,
    read_beir_judgments,
    read_beir_listwise,
    read_sick,
    read_sts_benchmark,
    read_wikiqa_reranking_samples,
    read_wikiqa_test_pairs,
    sick,
    split_sick,
    sts,
)
from rerank_lib.errors import DataValidationError


def test_wikiqa_test_has_6165_rows_with_quoting_off_and_merges_rows_otherwise(raw: Path) -> None:
    pairs = read_wikiqa_test_pairs(raw / "wikiqa" / "WikiQA-test.tsv", expected_rows=6165)
    assert pairs["question"].nunique() == 633
    assert pairs["label"].value_counts().to_dict() == {0.0: 5872, 1.0: 293}
    merged = pd.read_csv(raw / "wikiqa" / "WikiQA-test.tsv", sep="\t", quoting=csv.QUOTE_MINIMAL, dtype=str)
    assert len(merged) < 6165  # the quirk: default quoting merges rows
    samples = read_wikiqa_reranking_samples(raw / "wikiqa" / "WikiQA-test.tsv")
    assert len(samples) == 237


@pytest.mark.parametrize(("split", "rows", "extra"), [("train", 5749, 197), ("dev", 1500, 22), ("test", 1379, 284)])
def test_sts_benchmark_counts_and_trailing_fields(raw: Path, split: str, rows: int, extra: int) -> None:
    frame = read_sts_benchmark(raw / "stsbenchmark" / f"sts-{split}.csv", expected_rows=sts.ROWS[split])
    assert len(frame) == rows
    assert frame.attrs["extra_field_lines"] == extra  # rows with 2 trailing source fields, cut off
    assert frame["score"].between(0, 5).all() and frame["score"].min() == 0 and frame["score"].max() == 5
    assert not frame["sentence2"].str.contains("Europe Media Monitor").any()


def test_sts_benchmark_row_with_extra_fields_keeps_its_sentences(raw: Path) -> None:
    frame = read_sts_benchmark(raw / "stsbenchmark" / "sts-train.csv", normalize=True)
    row = frame[frame["sentence1"] == "Driver backs into stroller with child, drives off"].iloc[0]
    assert row["sentence2"] == "Driver backs into mom, stroller with child then drives off"
    assert row["score"] == pytest.approx(4 / 5)


def test_sick_counts_labels_and_deterministic_split(raw: Path) -> None:
    # DATA.md says 9,926 pairs: that is `wc -l` minus the header, but the last line has no newline; 9,927 pairs.
    frame = read_sick(raw / "sick" / "SICK.txt")
    assert len(frame) == sick.ROWS == 9927
    names = {value: key for key, value in sick.ENTAILMENT_LABELS.items()}
    assert Counter(names[c] for c in frame["entailment"]) == {
        "NEUTRAL": 5611,
        "ENTAILMENT": 2857,
        "CONTRADICTION": 1459,
    }
    assert frame["score"].between(1, 5).all()
    first, second = split_sick(frame, seed=42), split_sick(frame, seed=42)
    assert {name: len(part) for name, part in first.items()} == {"train": 8074, "dev": 985, "test": 868}
    assert all(first[name].equals(second[name]) for name in first)
    train, test = set(first["train"]["sentence1"]), set(first["test"]["sentence1"])
    assert not train & test  # grouped by the first sentence
    assert sum(len(part) for part in first.values()) == 9927


def test_scifact_corpus_and_qrels_with_header(raw: Path) -> None:
    assert len(read_beir_corpus(raw / "scifact")) == 5183
    train = read_beir_judgments(raw / "scifact", "train")
    dev = read_beir_judgments(raw / "scifact", "dev")
    assert (len(train), train["query_id"].nunique()) == (564, 505)
    assert (len(dev), dev["query_id"].nunique()) == (209, 188)
    assert set(train["label"]) == {1.0} and set(dev["label"]) == {1.0}
    assert "query-id" not in set(train["query_id"])  # the header line is not a judgment


def test_trec_dl19_graded_lists_without_header(raw: Path) -> None:
    judgments = read_beir_judgments(raw / "msmarco-trec-dl19", "test")
    assert len(judgments) == 4102
    assert judgments.attrs["queries"] == 50 and judgments.attrs["corpus"] == 5000
    assert judgments["query_id"].nunique() == 43
    assert Counter(judgments["label"]) == {2.0: 1804, 1.0: 1601, 3.0: 697}
    first = judgments.iloc[0]
    assert (first["query_id"], first["doc_id"], first["label"]) == ("19335", "1720389", 1.0)  # line 1 is data
    lists = read_beir_listwise(raw / "msmarco-trec-dl19", "test")
    assert len(lists) == 43 and sum(len(docs) for docs in lists["documents"]) == 4102


def test_reader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="sts-train.csv"):
        read_sts_benchmark(tmp_path / "sts-train.csv")
    bad = tmp_path / "SICK.txt"
    bad.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n1\ta\tb\t7\tNEUTRAL\n")
    with pytest.raises(DataValidationError, match=r"'relatedness_score', row 0: label 7.0 is outside"):
        read_sick(bad, expected_rows=None)
