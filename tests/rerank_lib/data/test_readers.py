"""Readers on the real team data, with the options the catalog in params.yaml gives them: row counts, label
distributions and the release quirks as stated in ../shared/DATA.md."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rerank_lib.data import TableOptions, read_beir_corpus, read_beir_judgments, read_beir_listwise, read_table
from rerank_lib.errors import DataValidationError

STS_COLUMNS = ("genre", "file", "year", "id", "score", "sentence1", "sentence2")
STS = TableOptions(format="tsv", header=False, names=STS_COLUMNS, quoting="none", extra_fields="drop")


def test_wikiqa_test_has_6165_rows_with_quoting_off_and_merges_rows_otherwise(raw: Path) -> None:
    path = raw / "wikiqa" / "WikiQA-test.tsv"
    table = read_table(path, TableOptions(quoting="none"), expected_rows=6165)
    assert table["Question"].nunique() == 633
    assert table["Label"].value_counts().to_dict() == {"0": 5872, "1": 293}
    both = table.groupby("Question")["Label"].agg(set)
    assert sum(labels == {"0", "1"} for labels in both) == 237  # the questions with a right and a wrong sentence
    assert len(read_table(path, TableOptions(quoting="minimal"))) < 6165  # the quirk: default quoting merges rows


def test_wikiqa_train_needs_default_quoting_for_fields_that_span_tabs(raw: Path) -> None:
    table = read_table(raw / "wikiqa" / "WikiQA-train.tsv", TableOptions(quoting="minimal"), expected_rows=20347)
    assert set(table["Label"]) == {"0", "1"}
    assert 2000 < table["Question"].nunique() < 2200  # questions are grouped by text, not by QuestionID
    assert 0 < table["Sentence"].str.contains("\t").sum() <= 13  # quoted fields holding tabs stay one field


@pytest.mark.parametrize(("split", "rows", "extra"), [("train", 5749, 197), ("dev", 1500, 22), ("test", 1379, 284)])
def test_sts_benchmark_counts_and_trailing_fields(raw: Path, split: str, rows: int, extra: int) -> None:
    table = read_table(raw / "stsbenchmark" / f"sts-{split}.csv", STS, expected_rows=rows)
    assert table.attrs["extra_field_lines"] == extra  # rows with 2 trailing source fields, cut off
    scores = table["score"].astype(float)
    assert scores.between(0, 5).all() and scores.min() == 0 and scores.max() == 5
    assert not table["sentence2"].str.contains("Europe Media Monitor").any()


def test_sts_benchmark_row_with_extra_fields_keeps_its_sentences(raw: Path) -> None:
    table = read_table(raw / "stsbenchmark" / "sts-train.csv", STS)
    row = table[table["sentence1"] == "Driver backs into stroller with child, drives off"].iloc[0]
    assert row["sentence2"] == "Driver backs into mom, stroller with child then drives off"
    assert float(row["score"]) == 4.0


def test_sick_has_9927_pairs_and_three_entailment_labels(raw: Path) -> None:
    # DATA.md says 9,926 pairs: that is `wc -l` minus the header, but the last line has no newline; 9,927 pairs.
    table = read_table(raw / "sick" / "SICK.txt", TableOptions(format="tsv", quoting="none"), expected_rows=9927)
    assert Counter(table["entailment_judgment"]) == {"NEUTRAL": 5611, "ENTAILMENT": 2857, "CONTRADICTION": 1459}
    assert table["relatedness_score"].astype(float).between(1, 5).all()


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
        read_table(tmp_path / "sts-train.csv", STS, dataset="stsbenchmark")
