"""Validation before training: every error names dataset, column and row; warnings come with counts."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from transformers import AutoTokenizer

from rerank_lib.data import validate_for_loss
from rerank_lib.errors import DataValidationError

PAIRS = pd.DataFrame({"query": ["q1", "q1", "q2"], "document": ["a", "b", "c"], "label": [1.0, 0.0, 0.0]})
LISTWISE = pd.DataFrame({"query": ["q1", "q2"], "documents": [["a", "b"], ["c"]], "labels": [[1.0, 0.0], [0.0]]})


def test_valid_pairs_pass_with_warning_counts(tiny_bert_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    data = pd.concat([PAIRS, PAIRS.iloc[[0]], pd.DataFrame([["q3", "cat " * 40, 1.0]], columns=PAIRS.columns)])
    report = validate_for_loss(
        data.reset_index(drop=True), "BinaryCrossEntropyLoss", dataset="toy", max_length=16, tokenizer=tokenizer
    )
    assert report.rows == 5
    assert report.warnings == {
        "duplicate rows": 1,
        "(query, document) pairs longer than 16 tokens (truncated)": 1,
        "queries without any positive": 1,
    }
    assert "dataset 'toy': 1 duplicate rows" in report.messages()


@pytest.mark.parametrize(
    ("frame", "loss", "kwargs", "message"),
    [
        (PAIRS.iloc[:0], "BinaryCrossEntropyLoss", {}, r"dataset 'toy': the dataset is empty"),
        (PAIRS, "BinaryCrossEntropyLoss", {"columns": ["query", "passage"]}, r"missing column\(s\) \['passage'\]"),
        (PAIRS.assign(document=["", None, math.nan]), "MSELoss", {}, r"column 'document' is empty"),
        (PAIRS.assign(document=["a", None, "c"]), "MSELoss", {}, r"column 'document', row 1: missing text"),
        (PAIRS.assign(label=[1.0, math.nan, 0.0]), "MSELoss", {}, r"column 'label', row 1: missing label"),
        (PAIRS.assign(label=[1.0, "yes", 0.0]), "MSELoss", {}, r"column 'label', row 1: label 'yes' is not a number"),
        (PAIRS.assign(label=[1.0, 2.0, 0.0]), "BinaryCrossEntropyLoss", {}, r"'label', row 1: label 2.0 is outside"),
        (PAIRS.assign(label=[0, 3, 1]), "CrossEntropyLoss", {"num_labels": 3}, r"row 1: .*class id in \[0, 3\)"),
        (PAIRS.assign(label=[0, 0.5, 1]), "CrossEntropyLoss", {"num_labels": 3}, r"row 1: .*got 0.5"),
        (LISTWISE.assign(labels=[[1.0], [0.0]]), "LambdaLoss", {}, r"'labels', row 0: 1 labels for 2 documents"),
        (LISTWISE.assign(labels=[[1.0, None], [0.0]]), "ListNetLoss", {}, r"'labels', row 0, item 1: missing label"),
        (LISTWISE.assign(documents=["a", ["c"]]), "ListNetLoss", {}, r"'documents', row 0: expected a list"),
        (PAIRS, "LambdaLoss", {}, r"column 'document', row 0: expected a list of texts"),
        (LISTWISE.assign(extra=["x", "y"]), "LambdaLoss", {}, r"LambdaLoss expects \(query, \[documents\]\) \+ \[gr"),
        (LISTWISE, "BinaryCrossEntropyLoss", {}, r"'documents', row 0: expected a text.*listwise"),
        (PAIRS.assign(extra=["x", "y", "z"]), "BinaryCrossEntropyLoss", {}, r"expects \(query, document\).* 3 input"),
        (PAIRS, "MultipleNegativesRankingLoss", {}, r"takes no labels, but the table has a 'label' column"),
        (PAIRS.drop(columns="label"), "MSELoss", {}, r"needs a label column named one of"),
        (PAIRS, "MarginMSELoss", {}, r"MarginMSELoss expects .*2 input column"),
    ],
)
def test_errors_name_dataset_column_and_row(frame: pd.DataFrame, loss: str, kwargs: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message) as error:
        validate_for_loss(frame.reset_index(drop=True), loss, dataset="toy", **kwargs)
    assert "dataset 'toy'" in str(error.value)


def test_margin_mse_label_widths() -> None:
    frame = pd.DataFrame({"query": ["q"], "positive": ["p"], "negative_1": ["n"], "negative_2": ["m"]})
    validate_for_loss(frame.assign(scores=[[9.0, 1.0, 2.0]]), "MarginMSELoss")
    validate_for_loss(frame.assign(scores=[[8.0, 7.0]]), "MarginMSELoss")
    with pytest.raises(DataValidationError, match="row 0: 1 labels; MarginMSELoss with 2 negatives"):
        validate_for_loss(frame.assign(scores=[[8.0]]), "MarginMSELoss")


def test_listwise_and_unlabelled_tuples_pass() -> None:
    assert validate_for_loss(LISTWISE, "LambdaLoss").warnings["queries without any positive"] == 1
    triplets = pd.DataFrame({"query": ["q"], "positive": ["p"], "negative": ["n"]})
    assert validate_for_loss(triplets, "MultipleNegativesRankingLoss").warnings == {"duplicate rows": 0}


def test_unknown_loss_and_missing_num_labels() -> None:
    with pytest.raises(ValueError, match="Unknown loss 'FocalLoss'"):
        validate_for_loss(PAIRS, "FocalLoss")
    with pytest.raises(ValueError, match="needs num_labels >= 2"):
        validate_for_loss(PAIRS, "CrossEntropyLoss")
