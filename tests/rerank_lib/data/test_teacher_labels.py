"""Teacher scores as distillation targets: added per pair with the weight, in list order; bad teachers refused."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from rerank_lib.data import add_teacher_scores
from rerank_lib.errors import DataValidationError
from rerank_lib.bi_encoder import BiEncoderScorer


class LengthTeacher:
    """Scores a pair by the document's length: easy to check by hand, and order-sensitive."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        self.calls.append(batch_size)
        return np.array([len(document) / 10 for _, document in pairs])


def test_listwise_labels_gain_the_weighted_score_of_each_document() -> None:
    lists = pd.DataFrame({"query": ["q1", "q2"], "documents": [["abc", "abcdefgh"], ["a"]], "labels": [[1, 0], [0]]})
    teacher = LengthTeacher()
    out = add_teacher_scores(lists, teacher, weight=0.5, batch_size=7)
    assert [label for labels in out["labels"] for label in labels] == pytest.approx([1.15, 0.4, 0.05])
    assert lists["labels"].tolist() == [[1, 0], [0]]  # the input is not modified
    assert teacher.calls == [7]


def test_pair_labels_gain_the_weighted_score() -> None:
    pairs = pd.DataFrame({"query": ["q", "q"], "document": ["abcd", "ab"], "label": [1.0, 0.0]})
    assert add_teacher_scores(pairs, LengthTeacher(), weight=2.0)["label"].tolist() == pytest.approx([1.8, 0.4])


def test_bi_encoder_teacher_orders_negatives_by_cosine_and_keeps_positives_first(tiny_bert_dir) -> None:
    lists = pd.DataFrame(
        {"query": ["red bus"], "documents": [["a big red bus", "red car", "cats sleep"]], "labels": [[1.0, 0.0, 0.0]]}
    )
    scorer = BiEncoderScorer(str(tiny_bert_dir))
    cosine = scorer.predict([("red bus", text) for text in lists["documents"][0]])
    out = add_teacher_scores(lists, scorer, weight=1.0)
    assert out["labels"][0] == pytest.approx([1.0 + cosine[0], cosine[1], cosine[2]], abs=1e-6)
    assert out["labels"][0][0] > max(out["labels"][0][1:])


def test_wrong_shapes_and_columns_are_refused_naming_the_dataset() -> None:
    class Broken:
        def predict(self, pairs, batch_size=32):
            return np.zeros(len(pairs) + 1)

    pairs = pd.DataFrame({"query": ["q"], "document": ["d"], "label": [1.0]})
    with pytest.raises(DataValidationError, match=r"dataset 'toy': the teacher must give one finite score per pair"):
        add_teacher_scores(pairs, Broken(), dataset_name="toy")
    with pytest.raises(DataValidationError, match=r"dataset 'toy': teacher scores need labelled pairs"):
        add_teacher_scores(pd.DataFrame({"query": ["q"], "positive": ["d"]}), LengthTeacher(), dataset_name="toy")
