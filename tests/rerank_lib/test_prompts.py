"""Prompts for queries and documents: stored with the model, applied at predict, rank and training time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.errors import ConfigError
from tests.rerank_lib.training.training_testkit import flat_weights, make_args, varied_pairs

PAIRS = [("what is the capital of france", "paris is the capital"), ("where is berlin", "the cat sleeps")]
PROMPTS = {"web": "question : ", "passage": "passage : "}


def prefixed(pairs: list[tuple[str, str]], query: str = "", document: str = "") -> list[tuple[str, str]]:
    return [(query + q, document + d) for q, d in pairs]


@pytest.fixture
def saved(tiny_bert_dir: Path, tmp_path: Path) -> Path:
    """A trained-looking model folder without prompts (its head is saved, so every load scores alike)."""
    torch.manual_seed(0)
    CrossEncoder(tiny_bert_dir, device="cpu").save_pretrained(tmp_path / "plain")
    return tmp_path / "plain"


def test_default_prompts_apply_to_predict_and_rank_and_are_saved(saved: Path, tmp_path: Path) -> None:
    plain = CrossEncoder(saved, device="cpu")
    model = CrossEncoder(
        saved, device="cpu", prompts=PROMPTS, default_prompt_name="web", default_document_prompt_name="passage"
    )
    expected = plain.predict(prefixed(PAIRS, PROMPTS["web"], PROMPTS["passage"]))
    np.testing.assert_allclose(model.predict(PAIRS), expected, atol=1e-7)
    assert np.abs(plain.predict(PAIRS) - expected).max() > 1e-6  # the prompts change the scores
    ranked = model.rank(PAIRS[0][0], [d for _, d in PAIRS])
    assert {item["corpus_id"]: item["score"] for item in ranked} == pytest.approx(
        dict(enumerate(plain.predict(prefixed([(PAIRS[0][0], d) for _, d in PAIRS], "question : ", "passage : "))))
    )
    model.save_pretrained(tmp_path / "with-prompts")
    section = json.loads((tmp_path / "with-prompts" / "config.json").read_text())["sentence_transformers"]
    assert section["prompts"] == PROMPTS and section["default_prompt_name"] == "web"
    np.testing.assert_allclose(
        CrossEncoder(tmp_path / "with-prompts", device="cpu").predict(PAIRS), expected, atol=1e-7
    )


def test_a_call_chooses_its_prompt_by_name_or_text(saved: Path) -> None:
    plain = CrossEncoder(saved, device="cpu")
    model = CrossEncoder(saved, device="cpu", prompts=PROMPTS, default_prompt_name="web")
    by_name = model.predict(PAIRS, prompt_name="passage", document_prompt_name="web")
    np.testing.assert_allclose(by_name, plain.predict(prefixed(PAIRS, "passage : ", "question : ")), atol=1e-7)
    literal = model.predict(PAIRS, prompt="find : ")
    np.testing.assert_allclose(literal, plain.predict(prefixed(PAIRS, "find : ")), atol=1e-7)
    np.testing.assert_allclose(model.predict(PAIRS, prompt=""), plain.predict(PAIRS), atol=1e-7)  # "" turns it off
    with pytest.raises(ConfigError, match="prompt_name='nope' is not one of the model's prompts"):
        model.predict(PAIRS, prompt_name="nope")
    with pytest.raises(ConfigError, match="default_prompt_name='x'"):
        CrossEncoder(saved, device="cpu", prompts=PROMPTS, default_prompt_name="x")


def test_sentence_transformers_prompt_file_is_read(saved: Path) -> None:
    st_file = {"prompts": {"query": "query : "}, "default_prompt_name": "query", "model_type": "CrossEncoder"}
    (saved / "config_sentence_transformers.json").write_text(json.dumps(st_file))
    plain_scores = CrossEncoder(saved, device="cpu", prompts={"query": ""}).predict(prefixed(PAIRS, "query : "))
    np.testing.assert_allclose(CrossEncoder(saved, device="cpu").predict(PAIRS), plain_scores, atol=1e-7)


def train(model: CrossEncoder, data: Dataset | DatasetDict, tmp_path: Path, **args) -> torch.Tensor:
    arguments = make_args(tmp_path, **{"max_steps": 3, "learning_rate": 1e-2, **args})
    CrossEncoderTrainer(model, args=arguments, train_dataset=data).train()
    return flat_weights(model)


def with_prefix(data: Dataset, query: str, document: str = "") -> Dataset:
    return data.map(lambda row: {"query": query + row["query"], "passage": document + row["passage"]})


def test_training_uses_the_models_default_prompts(saved: Path, tmp_path: Path) -> None:
    data = varied_pairs(12)
    prompted = CrossEncoder(saved, device="cpu", prompts=PROMPTS, default_prompt_name="web")
    reference = train(CrossEncoder(saved, device="cpu"), with_prefix(data, "question : "), tmp_path / "a")
    torch.testing.assert_close(train(prompted, data, tmp_path / "b"), reference, atol=1e-6, rtol=0)


def test_training_prompts_per_dataset_from_the_arguments(saved: Path, tmp_path: Path) -> None:
    first, second = varied_pairs(8, seed=1), varied_pairs(8, seed=2)
    prompts = {"a": "find : ", "b": {"query": "ask : ", "document": "doc : "}}
    got = train(
        CrossEncoder(saved, device="cpu"), DatasetDict({"a": first, "b": second}), tmp_path / "a", prompts=prompts
    )
    manual = DatasetDict({"a": with_prefix(first, "find : "), "b": with_prefix(second, "ask : ", "doc : ")})
    reference = train(CrossEncoder(saved, device="cpu"), manual, tmp_path / "b")
    torch.testing.assert_close(got, reference, atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match=r"prompts\['a'\] must be a text"):
        make_args(tmp_path, prompts={"a": {"question": "x"}})
