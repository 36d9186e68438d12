from __future__ import annotations

import re

import yaml

from rerank_lib.model_card import DatasetInfo, EvaluationInfo, LossInfo, ModelCardData, render_model_card


def card_data(**overrides) -> ModelCardData:
    options = dict(
        model_name="Test reranker",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        num_labels=1,
        max_length=256,
        activation_fn="torch.nn.modules.activation.Sigmoid",
        language="en",
        license="apache-2.0",
        datasets=[
            DatasetInfo(
                "wikiqa",
                3,
                ["question", "sentence", "label"],
                [{"question": "how are caves formed?", "sentence": "Caves form | in ice.", "label": 1.0}],
            )
        ],
        losses=[LossInfo("BinaryCrossEntropyLoss", {"pos_weight": None}, "@article{x, title={y}}")],
        evaluations=[
            EvaluationInfo("CrossEncoderRerankingEvaluator", "wikiqa_test", {"map": 0.5, "ndcg@10": 0.6}, "ndcg@10")
        ],
        hyperparameters={"learning_rate": 5e-5},
        log_history=[{"epoch": 0.5, "step": 10, "loss": 0.6}, {"epoch": 1.0, "step": 20, "loss": 0.4}],
    )
    options.update(overrides)
    return ModelCardData(**options)


def header(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "card must start with a YAML header"
    return yaml.safe_load(match.group(1))


def test_header_parses_and_carries_the_facts() -> None:
    text = render_model_card(card_data())
    meta = header(text)
    assert meta["pipeline_tag"] == "text-ranking"
    assert "loss:BinaryCrossEntropyLoss" in meta["tags"] and "dataset_size:3" in meta["tags"]
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values == {"map": 0.5, "ndcg@10": 0.6}
    assert header(render_model_card(card_data(num_labels=3)))["pipeline_tag"] == "text-classification"


def test_body_sections_and_escaping() -> None:
    text = render_model_card(card_data())
    for section in ("## Model details", "## Usage", "## Evaluation", "## Training details", "### Framework versions"):
        assert section in text
    assert "| **ndcg@10** | 0.6000 |" in text
    assert "Caves form \\| in ice." in text  # a pipe in data cannot break the table
    assert "@article{x, title={y}}" in text
    assert "\n\n\n" not in text


def test_hostile_strings_cannot_break_yaml_or_markdown() -> None:
    evil = 'x"\n---\nlicense: stolen\n<script>alert(1)</script>'
    text = render_model_card(card_data(model_name=evil, language=evil))
    meta = header(text)
    assert meta["license"] == "apache-2.0"
    assert meta["language"] == [evil]  # stored verbatim as YAML data, not as markup
    body = text.split("\n---\n", 1)[1]
    assert "<script>" not in body
    assert body.count("\n---\n") == 0
