"""Rendering: header fields, sections, dataset wording, evaluation tables, logs, and hostile input."""

from __future__ import annotations

import re

import pytest
import yaml

from rerank_lib.model_card import (
    ColumnStats,
    DatasetInfo,
    EvaluationInfo,
    LossInfo,
    ModelCardData,
    render_model_card,
    set_usage_id,
    update_card_metadata,
)
from rerank_lib.model_card.render import describe_datasets


def wikiqa(name: str = "wikiqa", size: int = 3, hub_id: str | None = "microsoft/wiki_qa") -> DatasetInfo:
    return DatasetInfo(
        name,
        size,
        ["question", "sentence", "label"],
        [{"question": "how are caves formed?", "sentence": "Caves form | in ice.", "label": 1.0}],
        column_stats={
            "question": ColumnStats("string", 10, 31.5, 80, 3),
            "sentence": ColumnStats("string", 12, 90.25, 300, 3),
            "label": ColumnStats("float", 0.0, 0.33, 1.0, 3),
        },
        hub_id=hub_id,
    )


def card_data(**overrides) -> ModelCardData:
    options = dict(
        model_name="Test reranker",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        num_labels=1,
        max_length=256,
        activation_fn="torch.nn.modules.activation.Sigmoid",
        language="en",
        license="apache-2.0",
        datasets=[wikiqa()],
        losses=[LossInfo("BinaryCrossEntropyLoss", {"pos_weight": None}, "@article{x, title={y}}")],
        evaluations=[
            EvaluationInfo("CrossEncoderRerankingEvaluator", "wikiqa_test", {"map": 0.5, "ndcg@10": 0.6}, "ndcg@10")
        ],
        hyperparameters={"learning_rate": 5e-5, "batch_size": 32, "seed": 42},
        non_default_hyperparameters={"learning_rate": 5e-5},
        log_history=[{"epoch": 0.5, "step": 10, "loss": 0.6}, {"epoch": 1.0, "step": 20, "loss": 0.4}],
        best_step=20,
    )
    options.update(overrides)
    return ModelCardData(**options)


def header(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "card must start with a YAML header"
    return yaml.safe_load(match.group(1))


def body(text: str) -> str:
    return re.sub(r"^---\n.*?\n---\n", "", text, count=1, flags=re.S)


def assert_well_formed(text: str) -> None:
    assert isinstance(header(text), dict)
    assert "\n\n\n" not in text  # not even two blank lines in a row, let alone three
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_header_of_a_one_output_model() -> None:
    text = render_model_card(card_data(co2_eq_emissions={"emissions": 12.5, "source": "codecarbon"}))
    meta = header(text)
    assert meta["pipeline_tag"] == "text-ranking"
    assert meta["library_name"] == "rerank_lib"
    assert meta["tags"][:3] == ["cross-encoder", "reranker", "generated_from_trainer"]
    assert "loss:BinaryCrossEntropyLoss" in meta["tags"] and "dataset_size:3" in meta["tags"]
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["microsoft/wiki_qa"]
    assert meta["language"] == ["en"] and meta["license"] == "apache-2.0"
    assert meta["metrics"] == ["map", "ndcg@10"]
    assert meta["co2_eq_emissions"] == {"emissions": 12.5, "source": "codecarbon"}
    result = meta["model-index"][0]["results"][0]
    assert meta["model-index"][0]["name"] == "Test reranker"
    assert result["task"]["type"] == "text-ranking" and result["dataset"]["name"] == "wikiqa_test"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"map": 0.5, "ndcg@10": 0.6}
    assert {m["name"] for m in result["metrics"]} == {"MAP", "NDCG@10"}
    assert_well_formed(text)


def test_header_of_a_multi_output_model_and_optional_fields() -> None:
    card = card_data(num_labels=3, language=None, license=None, evaluations=[], datasets=[wikiqa(hub_id=None)])
    text = render_model_card(card)
    meta = header(text)
    assert meta["pipeline_tag"] == "text-classification"
    for absent in ("language", "license", "datasets", "metrics", "model-index", "co2_eq_emissions"):
        assert absent not in meta
    assert "classifies each pair of texts into 3 classes" in text
    assert "# (1, 3)" in text and "model.rank(" not in text  # output shape of a 3-label model, no rank()
    assert_well_formed(text)


def test_body_sections_usage_and_escaping() -> None:
    text = render_model_card(card_data(model_id="org/wikiqa-reranker"))
    for section in (
        "## Model details",
        "## Usage",
        "## Evaluation",
        "## Training details",
        "### Training datasets",
        "### Losses",
        "### Hyperparameters that differ from the defaults",
        "### Training logs",
        "### Framework versions",
        "## Citation",
    ):
        assert section in text, section
    assert "- **Maximum sequence length:** 256 tokens" in text
    assert "- **Activation:** `torch.nn.modules.activation.Sigmoid`" in text
    # usage uses a real training pair and shows the output shape
    assert 'model = CrossEncoder("org/wikiqa-reranker")' in text
    assert '("how are caves formed?", "Caves form | in ice."),' in text and "# (1,)" in text
    assert "from sentence_transformers import CrossEncoder" in text
    assert "| **ndcg@10** | **0.6000** |" in text
    assert "Caves form \\| in ice." in text  # a pipe in data cannot break the table
    assert "| details | min: 10 characters, mean: 31.50 characters, max: 80 characters |" in text
    assert "```bibtex\n@article{x, title={y}}\n```" in text
    assert "- transformers: " in text and "- torch: " in text
    assert_well_formed(text)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "on the d0 dataset using"),
        (2, "on the d0 and d1 datasets using"),
        (10, "on 10 datasets (d0, d1, d2 and 7 others) using"),
        (50, "on 50 datasets (d0, d1, d2 and 47 others) using"),
    ],
)
def test_dataset_wording_and_collapsing(count: int, expected: str) -> None:
    datasets = [wikiqa(f"d{i}", size=i + 1, hub_id=f"org/d{i}") for i in range(count)]
    text = render_model_card(card_data(datasets=datasets))
    assert expected in text
    meta = header(text)
    assert meta["datasets"] == [f"org/d{i}" for i in range(count)]
    assert f"dataset_size:{sum(range(1, count + 1))}" in meta["tags"]
    details = text.split("<details><summary>", 1)
    if count > 3:
        assert details[1].startswith(f"{count - 3} more training datasets</summary>")
        assert all(f"#### [d{i}]" in details[0] for i in range(3))
        assert all(f"#### [d{i}]" in details[1] for i in range(3, count))
    else:
        assert "more training dataset" not in text
        assert all(f"#### [d{i}](https://huggingface.co/datasets/org/d{i})" in text for i in range(count))
    assert_well_formed(text)


def test_describe_datasets_boundaries() -> None:
    assert describe_datasets([]) == ""
    assert describe_datasets(["a", "b", "c", "d", "e"]) == "the a, b, c, d and e datasets"
    assert describe_datasets([f"x{i}" for i in range(6)]) == "6 datasets (x0, x1, x2 and 3 others)"


def test_several_evaluators_of_one_kind_share_a_table_with_baseline_deltas() -> None:
    evaluations = [
        EvaluationInfo(
            "CrossEncoderRerankingEvaluator",
            "msmarco",
            {"map": 0.55, "mrr@10": 0.6, "ndcg@10": 0.62},
            "ndcg@10",
            baseline={"map": 0.3, "mrr@10": 0.31, "ndcg@10": 0.34},
        ),
        EvaluationInfo("CrossEncoderRerankingEvaluator", "nq", {"map": 0.4, "ndcg@10": 0.5}, "ndcg@10"),
        EvaluationInfo("CrossEncoderClassificationEvaluator", "quora", {"accuracy": 0.9, "f1": 0.8}, "f1"),
    ]
    text = render_model_card(card_data(evaluations=evaluations))
    assert text.count("### CrossEncoderRerankingEvaluator") == 1
    assert "| Metric | msmarco | nq |" in text
    assert "| map | 0.5500 (+0.2500) | 0.4000 |" in text
    assert "| mrr@10 | 0.6000 (+0.2900) |  |" in text  # nq has no mrr@10
    assert "| **ndcg@10** | **0.6200 (+0.2800)** | **0.5000** |" in text
    assert "change against the first-stage ranking" in text
    assert "### CrossEncoderClassificationEvaluator" in text and "| Metric | quora |" in text
    results = header(text)["model-index"][0]["results"]
    assert [r["dataset"]["name"] for r in results] == ["msmarco", "nq", "quora"]
    assert results[2]["task"]["type"] == "text-classification"


def test_evaluation_info_from_results_splits_prefix_and_baseline() -> None:
    info = EvaluationInfo.from_results(
        "CrossEncoderRerankingEvaluator",
        "wikiqa",
        {"wikiqa_map": 0.7, "wikiqa_ndcg@10": 0.8, "wikiqa_base_map": 0.5, "wikiqa_base_ndcg@10": 0.6},
        prefix="wikiqa_",
        primary_metric="wikiqa_ndcg@10",
    )
    assert info.metrics == {"map": 0.7, "ndcg@10": 0.8}
    assert info.baseline == {"map": 0.5, "ndcg@10": 0.6}
    assert info.primary_metric == "ndcg@10"


def test_hyperparameters_non_default_open_and_all_collapsed() -> None:
    text = render_model_card(card_data())
    open_part, collapsed = text.split("<details><summary>All hyperparameters</summary>", 1)
    non_default = open_part.split("### Hyperparameters that differ from the defaults", 1)[1]
    assert "| learning\\_rate | 5e-05 |" in non_default and "batch\\_size" not in non_default
    all_table = collapsed.split("</details>", 1)[0]
    assert "| batch\\_size | 32 |" in all_table and "| seed | 42 |" in all_table


def test_training_log_merges_eval_rows_and_bolds_the_best_step() -> None:
    history = [
        {"loss": 0.7, "grad_norm": 1.0, "learning_rate": 1e-4, "epoch": 0.5, "step": 5},
        {"eval_loss": 0.65, "eval_toy_ndcg@10": 0.5, "eval_runtime": 0.1, "epoch": 0.5, "step": 5},
        {"loss": 0.5, "epoch": 1.0, "step": 10},
        {"eval_loss": 0.55, "eval_toy_ndcg@10": 0.75, "epoch": 1.0, "step": 10},
        {"train_runtime": 3.0, "train_loss": 0.6, "epoch": 1.0, "step": 10},
    ]
    text = render_model_card(card_data(log_history=history, best_step=5))
    assert "| Epoch | Step | Training Loss | Validation Loss | toy\\_ndcg@10 |" in text
    assert "| **0.5000** | **5** | **0.7000** | **0.6500** | **0.5000** |" in text
    assert "| 1.0000 | 10 | 0.5000 | 0.5500 | 0.7500 |" in text
    assert "runtime" not in body(text).split("### Training logs")[1].split("###")[0]
    assert "step of the saved checkpoint (step 5)" in text
    assert "Training log (" not in text  # short logs stay open


def test_training_log_collapses_past_100_rows() -> None:
    history = [{"loss": 1.0 / step, "epoch": step / 150, "step": step} for step in range(1, 151)]
    text = render_model_card(card_data(log_history=history, best_step=150))
    assert "<details><summary>Training log (150 rows)</summary>" in text
    logs = text.split("<details><summary>Training log (150 rows)</summary>", 1)[1].split("</details>", 1)[0]
    assert logs.count("\n| ") == 151  # header + 150 rows inside the collapsed block
    assert "| **1.0000** | **150** | **0.0067** |" in logs
    short = render_model_card(card_data(log_history=history[:100]))
    assert "Training log (" not in short


def test_citations_are_deduplicated_and_fenced() -> None:
    losses = [
        LossInfo("LambdaLoss", {"k": 10}, "@inproceedings{wang2018lambdaloss,\n  title={The LambdaLoss Framework}\n}"),
        LossInfo("LambdaLoss", {"k": 10}, "@inproceedings{wang2018lambdaloss,\n  title={The LambdaLoss Framework}\n}"),
        LossInfo("MSELoss", {}, ""),
        LossInfo("Weird", {}, "@misc{a, note={```}}"),
    ]
    text = render_model_card(card_data(losses=losses))
    assert text.count("@inproceedings{wang2018lambdaloss") == 1
    assert "#### MSELoss" not in text
    assert "````bibtex\n@misc{a, note={```}}\n````" in text  # a longer fence: the citation cannot close it
    assert ["loss:LambdaLoss", "loss:MSELoss", "loss:Weird"] == [t for t in header(text)["tags"] if "loss:" in t]


HOSTILE = (
    'evil"\n---\nlicense: stolen\n<script>alert(1)</script> {{ 7*7 }} {% raw %}x{% endraw %} '
    "[click](javascript:alert(1)) **bold** | col ``` `code` # heading \u2028 ${x}"
)


def test_hostile_strings_cannot_break_yaml_markdown_or_the_template() -> None:
    dataset = DatasetInfo(
        HOSTILE,
        2,
        [HOSTILE, "label"],
        [{HOSTILE: HOSTILE, "label": 1}, {HOSTILE: "ok", "label": 0}],
        hub_id=HOSTILE,
    )
    card = card_data(
        model_name=HOSTILE,
        language=HOSTILE,
        base_model=HOSTILE,
        datasets=[dataset, wikiqa()],
        losses=[LossInfo(HOSTILE, {HOSTILE: HOSTILE}, HOSTILE)],
        evaluations=[EvaluationInfo(HOSTILE, HOSTILE, {HOSTILE: 0.5}, HOSTILE, baseline={HOSTILE: 0.25})],
        hyperparameters={HOSTILE: HOSTILE},
        non_default_hyperparameters={HOSTILE: HOSTILE},
        tags=[HOSTILE],
    )
    text = render_model_card(card)
    meta = header(text)
    assert meta["license"] == "apache-2.0"
    assert meta["language"] == [HOSTILE]  # verbatim data, not markup
    assert "base_model" not in meta  # not a Hub id: named in the text only
    assert meta["model-index"][0]["name"] == HOSTILE
    assert "datasets" in meta and meta["datasets"] == [HOSTILE, "microsoft/wiki_qa"]
    rest = body(text)
    # Outside code (where markdown shows text verbatim) no tag survives; inside code it is inert text.
    prose = re.sub(r"(`+)(?:(?!\1).)*\1", "", re.sub(r"^(`{3,})[a-z]*\n.*?^\1$", "", rest, flags=re.S | re.M))
    assert "<script>" not in prose and "&lt;script&gt;" in prose
    assert "\n---\n" not in prose  # (a BibTeX block keeps its lines, but inside a fence that nothing can close)
    assert "49" not in rest and "{{ 7\\*7 }}" in rest  # template syntax in data is text, never evaluated
    assert not re.search(r"(?<!\\)\]\(javascript:", prose) and "\\[click\\](javascript:" in prose  # escaped
    assert "https://huggingface.co/datasets/evil" not in rest  # an invalid hub id is never turned into a link
    assert "\n# heading" not in rest
    # code blocks: the Python literal keeps the text but cannot close the fence
    python_blocks = re.findall(r"```python\n(.*?)\n```", rest, re.S)
    assert len(python_blocks) == 2 and all("```" not in block for block in python_blocks)
    # every table row has the same number of cells as its header
    for table in re.findall(r"((?:^\|.*\|\n)+)", rest, re.M):
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table.strip().splitlines()}
        assert len(widths) == 1, table
    assert_well_formed(text)


def test_no_runs_of_blank_lines_even_with_empty_sections() -> None:
    card = card_data(
        datasets=[], losses=[], evaluations=[], hyperparameters={}, non_default_hyperparameters={}, log_history=[]
    )
    text = render_model_card(card)
    assert "## Training details" in text
    assert_well_formed(text)
    assert all(line == line.rstrip() for line in text.splitlines())


def test_update_card_metadata_adds_tags_and_keeps_the_body() -> None:
    text = render_model_card(card_data())
    updated = update_card_metadata(text, tags=["my-tag", "reranker"])
    assert header(updated)["tags"][-1] == "my-tag" and header(updated)["tags"].count("reranker") == 1
    assert body(updated).strip() == body(text).strip()
    assert update_card_metadata(text) == text  # nothing to change: byte-identical
    plain = update_card_metadata("# hand-written card\n", tags=["x"])
    assert header(plain) == {"tags": ["x"]} and plain.endswith("# hand-written card\n")


def test_set_usage_id_points_snippets_at_the_repo() -> None:
    text = render_model_card(card_data())
    assert 'CrossEncoder("path/to/model")' in text
    updated = set_usage_id(text, "org/new-model")
    assert 'CrossEncoder("path/to/model")' not in updated and updated.count('CrossEncoder("org/new-model")') == 2
    package = {"share": 0.3, "first_stage": "bi-encoder", "first_stage_model": "m"}
    packaged = render_model_card(card_data(package=package))
    assert 'load_reranker("org/new-model")' in set_usage_id(packaged, "org/new-model")  # the package's loader too


def test_column_stats_may_arrive_as_plain_dicts() -> None:
    stats = {"q": {"dtype": "string", "rows": 2, "unit": "characters", "min": 3, "mean": 4.5, "max": 6}}
    dataset = DatasetInfo("plain", 2, ["q"], [{"q": "abc"}], column_stats=stats)
    assert dataset.column_stats["q"] == ColumnStats("string", 3, 4.5, 6, 2)
    assert "| details | min: 3 characters, mean: 4.50 characters, max: 6 characters |" in render_model_card(
        card_data(datasets=[dataset])
    )


def test_a_local_base_model_path_stays_out_of_the_header() -> None:
    text = render_model_card(card_data(base_model="/tmp/models/base"))
    assert "base_model" not in header(text) and "finetuned from /tmp/models/base" in text


def test_card_data_round_trips_through_json() -> None:
    import json

    card = card_data(co2_eq_emissions={"emissions": 1.0})
    again = ModelCardData.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card
    assert render_model_card(again) == render_model_card(card)
    assert ModelCardData.from_dict({**card.to_dict(), "future_field": 1}) == card
