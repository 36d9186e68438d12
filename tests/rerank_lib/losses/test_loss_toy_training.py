"""Every loss trains the tiny model through CrossEncoderTrainer: the loss goes down and relevant beats irrelevant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from loss_testkit import one_thread  # noqa: F401 (one_thread is autouse)
from torch import nn

from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from rerank_lib.losses import (
    ADRMSELoss,
    BinaryCrossEntropyLoss,
    CachedMultipleNegativesRankingLoss,
    CrossEntropyLoss,
    LambdaLoss,
    ListMLELoss,
    ListNetLoss,
    MarginMSELoss,
    MSELoss,
    MultipleNegativesRankingLoss,
    PListMLELoss,
    RankNetLoss,
)

# (query, relevant, irrelevant, another irrelevant)
TOY = [
    ("what is the capital of france", "paris is the capital of france", "a dog eats food", "green music"),
    ("where is berlin", "berlin is in germany", "the cat sleeps", "a small book"),
    ("who reads a book", "a woman reads a book", "the river water", "a red bus"),
    ("what does the dog eat", "the dog eats food", "a blue car", "rome is in italy"),
]
QUERIES = [row[0] for row in TOY]
RELEVANT = [row[1] for row in TOY]
IRRELEVANT = [row[2] for row in TOY]
OTHER = [row[3] for row in TOY]


def pointwise(labels: tuple[Any, Any]) -> dict[str, list]:
    return {
        "query": QUERIES + QUERIES,
        "passage": RELEVANT + IRRELEVANT,
        "label": [labels[0]] * len(TOY) + [labels[1]] * len(TOY),
    }


TRIPLETS = {"query": QUERIES, "positive": RELEVANT, "negative": IRRELEVANT}
# Ragged lists, best first (PListMLE/ListMLE default to the input order), one ignored document (grade -1).
LISTS = {
    "query": QUERIES,
    "docs": [[r, i, o] for _, r, i, o in TOY[:2]]
    + [[r, i] for _, r, i, _ in TOY[2:3]]
    + [[r, o, i] for _, r, i, o in TOY[3:]],
    "labels": [[1.0, 0.0, 0.0], [1.0, 0.0, -1.0], [1.0, 0.0], [1.0, 0.0, 0.0]],
}


@dataclass
class Case:
    build: Callable[[CrossEncoder], nn.Module]
    data: dict[str, list]
    multilabel: bool = False
    steps: int = 40
    floor: Callable[[], float] | None = None  # the smallest value the loss can take on the data


def listnet_floor() -> float:
    """ListNet's minimum is the entropy of the target distributions softmax(grades) (ignored documents left out)."""
    entropies = []
    for grades in LISTS["labels"]:
        target = torch.softmax(torch.tensor([g for g in grades if g >= 0]), dim=0)
        entropies.append(float(-(target * target.log()).sum()))
    return sum(entropies) / len(entropies)


CASES = {
    "BinaryCrossEntropyLoss": Case(BinaryCrossEntropyLoss, pointwise((1.0, 0.0)), steps=60),
    "CrossEntropyLoss": Case(CrossEntropyLoss, pointwise((1, 0)), multilabel=True, steps=60),
    "MSELoss": Case(MSELoss, pointwise((1.0, 0.0)), steps=60),
    "MarginMSELoss": Case(MarginMSELoss, {**TRIPLETS, "label": [[3.0, 0.0]] * len(TOY)}),
    "MultipleNegativesRankingLoss": Case(lambda m: MultipleNegativesRankingLoss(m, num_negatives=2), TRIPLETS),
    "CachedMultipleNegativesRankingLoss": Case(
        lambda m: CachedMultipleNegativesRankingLoss(m, num_negatives=2, mini_batch_size=5), TRIPLETS
    ),
    "ListNetLoss": Case(ListNetLoss, LISTS, floor=listnet_floor),
    "PListMLELoss": Case(PListMLELoss, LISTS),
    "LambdaLoss": Case(LambdaLoss, LISTS),
    "RankNetLoss": Case(RankNetLoss, LISTS),
    "ListMLELoss": Case(lambda m: ListMLELoss(m, mini_batch_size=4), LISTS),
    "ADRMSELoss": Case(ADRMSELoss, LISTS),
}


def batch_loss(loss: nn.Module, data: dict[str, list]) -> float:
    """The loss over the whole toy set, without dropout and with fixed in-batch negatives."""
    model = loss.model
    was_training = model.training
    model.eval()
    columns = [values for name, values in data.items() if name not in ("label", "labels")]
    labels = data.get("label", data.get("labels"))
    if labels is not None:
        labels = [torch.tensor(x) for x in labels] if isinstance(labels[0], list) else torch.tensor(labels)
    torch.manual_seed(0)
    with torch.no_grad():
        value = loss(columns, labels).item()
    model.train(was_training)
    return value


def relevance_margin(model: CrossEncoder, multilabel: bool) -> torch.Tensor:
    """Per query: score of the relevant passage minus score of the irrelevant one (class 1's probability for CE)."""
    pairs = [(q, r) for q, r in zip(QUERIES, RELEVANT, strict=True)]
    pairs += [(q, i) for q, i in zip(QUERIES, IRRELEVANT, strict=True)]
    scores = model.predict(pairs, apply_softmax=True, convert_to_tensor=True)
    if multilabel:
        scores = scores[:, 1]
    return scores[: len(TOY)] - scores[len(TOY) :]


@pytest.mark.parametrize("name", list(CASES))
def test_loss_trains_the_tiny_model(
    name: str, tiny_model: CrossEncoder, tiny_multilabel_model: CrossEncoder, tmp_path: Path
) -> None:
    case = CASES[name]
    model = tiny_multilabel_model if case.multilabel else tiny_model
    loss = case.build(model)
    before = batch_loss(loss, case.data)
    args = CrossEncoderTrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=case.steps,
        learning_rate=2e-3,
        lr_scheduler_type="constant",
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = CrossEncoderTrainer(model, args=args, train_dataset=Dataset.from_dict(case.data), loss=loss)
    trainer.train()
    after = batch_loss(loss, case.data)
    floor = case.floor() if case.floor else 0.0
    assert after - floor < 0.8 * (before - floor), (before, after, floor)
    assert (relevance_margin(model, case.multilabel) > 0).all()
