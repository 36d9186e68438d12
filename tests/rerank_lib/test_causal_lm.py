"""Causal-LM (generative) rerankers: logit("yes") - logit("no") after a template, trained, saved and reloaded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BertTokenizerFast

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib import losses as L
from rerank_lib.causal_lm import QWEN3_DEFAULT_INSTRUCTION, QWEN3_RERANKER_TEMPLATE, LogitScoreConfig, longest_first
from rerank_lib.errors import ConfigError
from tests.rerank_lib.training.training_testkit import make_args

PAIRS = [
    ("what is the capital of france", "paris is the capital of france"),
    ("where is berlin", "the cat sleeps on the big red book in the small car"),
    ("who reads", "a woman reads a book"),
]
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def reference_score(folder: Path, query: str, document: str, instruction: str = QWEN3_DEFAULT_INSTRUCTION) -> float:
    """Qwen3-Reranker's recipe on one unpadded prompt: sigmoid(logit(yes) - logit(no)) at the last position."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    text = QWEN3_RERANKER_TEMPLATE.format(instruction=instruction, query=query, document=document)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    return float(torch.sigmoid(logits[yes] - logits[no]))


def test_a_plain_causal_lm_folder_loads_as_a_qwen3_style_reranker(tiny_causal_lm_dir: Path) -> None:
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu")
    assert model.num_labels == 1 and model.tokenizer.padding_side == "left"
    assert model.logit_score.config.template == QWEN3_RERANKER_TEMPLATE
    scores = model.predict(PAIRS, batch_size=3)  # one left-padded batch of three lengths
    expected = [reference_score(tiny_causal_lm_dir, query, document) for query, document in PAIRS]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    ranked = model.rank(PAIRS[0][0], [document for _, document in PAIRS])
    assert [item["corpus_id"] for item in ranked] == list(
        np.argsort(-np.array(model.predict([(PAIRS[0][0], document) for _, document in PAIRS])))
    )


def test_truncation_never_cuts_the_template_suffix(tiny_causal_lm_dir: Path) -> None:
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu", max_length=90)
    long_document = " ".join(["the big red book"] * 40)
    encoded = model.encode_pairs(["what is the capital of france"], [long_document])["input_ids"][0]
    suffix = model.tokenizer(SUFFIX, add_special_tokens=False)["input_ids"]
    assert len(encoded) == 90 and encoded[-len(suffix) :] == suffix
    query = model.tokenizer("what is the capital of france", add_special_tokens=False)["input_ids"]
    assert any(encoded[i : i + len(query)] == query for i in range(len(encoded)))  # the short side is kept whole
    features = model.tokenize([("what is the capital of france", long_document), ("a", "b")])
    assert features["input_ids"].shape == (2, 90) and features["attention_mask"][1, 0] == 0  # left padding
    with pytest.raises(ConfigError, match="max_length=60 leaves"):
        CrossEncoder(tiny_causal_lm_dir, device="cpu", max_length=60).predict(PAIRS[:1])


def test_longest_first_matches_the_tokenizers_own_pair_truncation(tiny_bert_dir: Path) -> None:
    tokenizer = BertTokenizerFast.from_pretrained(tiny_bert_dir)
    rng = random.Random(0)
    for _ in range(200):
        first, second = rng.randint(1, 30), rng.randint(1, 30)
        budget = rng.randint(2, 60)
        encoded = tokenizer(
            " ".join(["cat"] * first),
            " ".join(["dog"] * second),
            add_special_tokens=False,
            truncation="longest_first",
            max_length=budget,
            return_token_type_ids=True,
        )
        kept_second = sum(encoded["token_type_ids"])
        assert longest_first(first, second, budget) == (len(encoded["input_ids"]) - kept_second, kept_second)


def test_custom_template_tokens_and_prompts_are_saved_and_reloaded(tiny_causal_lm_dir: Path, tmp_path: Path) -> None:
    template = LogitScoreConfig(
        template="<|im_start|>user\nquery: {query}\ndocument: {document}<|im_end|>\n<|im_start|>assistant\n",
        true_token="good",
        false_token="bad",
        default_instruction=None,
    )
    model = CrossEncoder(
        tiny_causal_lm_dir, device="cpu", logit_score=template, prompts={"web": "web"}, default_prompt_name="web"
    )
    expected = model.predict(PAIRS)
    model.save_pretrained(tmp_path / "saved")
    section = json.loads((tmp_path / "saved" / "config.json").read_text())["sentence_transformers"]
    assert section["logit_score"]["true_token"] == "good" and section["default_prompt_name"] == "web"
    loaded = CrossEncoder(tmp_path / "saved", device="cpu")
    assert loaded.logit_score.config == template and loaded.prompts == {"web": "web"}
    np.testing.assert_allclose(loaded.predict(PAIRS), expected, atol=1e-6)
    # without {instruction} the prompt goes right before the query, and is never truncated
    ids = loaded.encode_pairs(["paris"], ["france"])["input_ids"][0]
    assert loaded.tokenizer.convert_ids_to_tokens(ids)[:8] == [
        "<|im_start|>", "user", "query", ":", "web", "paris", "document", ":"
    ]  # fmt: skip


def test_the_prompt_fills_the_instruction_field(tiny_causal_lm_dir: Path) -> None:
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu")
    instruction = "judge the city answer"
    score = model.predict(PAIRS[:1], prompt=instruction)[0]
    assert score == pytest.approx(reference_score(tiny_causal_lm_dir, *PAIRS[0], instruction=instruction), abs=1e-5)
    assert score != pytest.approx(model.predict(PAIRS[:1])[0], abs=1e-7)


def test_template_from_the_tokenizers_chat_template(tiny_causal_lm_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    config = LogitScoreConfig.from_chat_template(tokenizer, system='answer "yes" or "no"')
    assert config.template.startswith('<|im_start|>system\nanswer "yes" or "no"<|im_end|>\n<|im_start|>user\n')
    assert config.template.endswith("<Document>: {document}<|im_end|>\n<|im_start|>assistant\n")
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu", logit_score=config)
    assert np.isfinite(model.predict(PAIRS)).all()


def test_bad_templates_and_options_fail_before_loading(tiny_causal_lm_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs \{query\} exactly once; it has it 2 times"):
        LogitScoreConfig(template="{query} {query}")
    with pytest.raises(ConfigError, match="is not one of"):
        LogitScoreConfig(template="{query} {document} {passage}")
    with pytest.raises(ConfigError, match="exports sequence classifiers only"):
        CrossEncoder(tiny_causal_lm_dir, device="cpu", backend="onnx")
    with pytest.raises(ConfigError, match="one score per pair"):
        CrossEncoder(tiny_causal_lm_dir, device="cpu", num_labels=3)


POINT = {"query": [q for q, _ in PAIRS], "passage": [d for _, d in PAIRS], "label": [1.0, 0.0, 1.0]}
TRIPLETS = {"query": [q for q, _ in PAIRS], "positive": [d for _, d in PAIRS], "negative": ["a dog", "a cat", "a bus"]}
LISTS = {
    "query": [q for q, _ in PAIRS],
    "docs": [[d, "a dog eats food", "green music"] for _, d in PAIRS],
    "labels": [[1.0, 0.0, 0.2], [0.9, 0.1, 0.0], [1.0, 0.5, -1.0]],
}
LOSSES = {
    "BinaryCrossEntropyLoss": (L.BinaryCrossEntropyLoss, POINT),
    "MSELoss": (L.MSELoss, POINT),
    "MarginMSELoss": (L.MarginMSELoss, {**TRIPLETS, "label": [[2.0, 0.0]] * 3}),
    "MultipleNegativesRankingLoss": (lambda m: L.MultipleNegativesRankingLoss(m, num_negatives=2), TRIPLETS),
    "CachedMultipleNegativesRankingLoss": (
        lambda m: L.CachedMultipleNegativesRankingLoss(m, num_negatives=2, mini_batch_size=4),
        TRIPLETS,
    ),
    "ListNetLoss": (L.ListNetLoss, LISTS),
    "PListMLELoss": (L.PListMLELoss, LISTS),
    "ListMLELoss": (L.ListMLELoss, LISTS),
    "LambdaLoss": (L.LambdaLoss, LISTS),
    "RankNetLoss": (L.RankNetLoss, LISTS),
    "ADRMSELoss": (L.ADRMSELoss, LISTS),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_one_output_loss_trains_the_causal_reranker(name: str, tiny_causal_lm_dir: Path, tmp_path: Path) -> None:
    build, data = LOSSES[name]
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu", max_length=128)
    before = model.predict(PAIRS)
    args = make_args(tmp_path, max_steps=2, per_device_train_batch_size=3, learning_rate=1e-2)
    CrossEncoderTrainer(model, args=args, train_dataset=Dataset.from_dict(data), loss=build(model)).train()
    after = model.predict(PAIRS)
    assert np.isfinite(after).all() and np.abs(after - before).max() > 1e-4


def test_a_lora_causal_reranker_trains_saves_and_reloads(tiny_causal_lm_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu", max_length=128)
    model.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    args = make_args(tmp_path, max_steps=3, per_device_train_batch_size=3, learning_rate=1e-2)
    CrossEncoderTrainer(model, args=args, train_dataset=Dataset.from_dict(LISTS), loss=L.LambdaLoss(model)).train()
    expected = model.predict(PAIRS)
    model.save_pretrained(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    loaded = CrossEncoder(tmp_path / "lora", device="cpu")
    assert loaded.has_adapter and loaded.logit_score is not None
    np.testing.assert_allclose(loaded.predict(PAIRS), expected, atol=1e-6)
