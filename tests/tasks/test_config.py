from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rerank_lib.errors import ConfigError
from tasks.config import load_params

ROOT = Path(__file__).resolve().parents[2]


def write_params(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_project_params_parse_into_typed_sections() -> None:
    cfg = load_params(ROOT / "params.yaml")
    assert set(cfg.prepare.datasets) >= {"wikiqa-train", "wikiqa-test", "scifact-train", "trec-dl19"}
    assert cfg.tracking.tracking_uri == "sqlite:///mlflow.db"
    assert cfg.push.enabled is False and cfg.launch.kind == "python"


def test_quick_profile_overrides_only_what_it_names() -> None:
    full = load_params(ROOT / "params.yaml")
    quick = load_params(ROOT / "params.yaml", profile="quick")
    assert quick.train.datasets["wikiqa-train-lists"].max_rows == 24
    assert quick.train.datasets["wikiqa-train-lists"].loss == full.train.datasets["wikiqa-train-lists"].loss
    assert "scifact-train" in quick.prepare.skip and "scifact-train" in quick.prepare.datasets
    assert set(quick.evaluate.suite) == {"wikiqa_test", "wikiqa_test_pairs", "stsb_test", "scifact_dev"}
    assert {spec.kind for spec in quick.evaluate.suite.values()} == {
        "reranking",
        "classification",
        "correlation",
        "beir",
    }
    assert quick.evaluate.max_queries == 20 and full.evaluate.max_queries is None
    assert {spec.kind for spec in full.evaluate.suite.values()} == {
        "reranking",
        "classification",
        "correlation",
        "beir",
    }
    assert quick.train.max_length == 64
    assert quick.train.learning_rate == full.train.learning_rate
    full_lists, quick_lists = full.prepare.datasets["wikiqa-train-lists"], quick.prepare.datasets["wikiqa-train-lists"]
    assert full_lists.teacher is not None and quick_lists.teacher is None
    assert quick_lists.mining == full_lists.mining and quick_lists.mining.keep_labelled


def test_every_training_dataset_is_prepared_and_a_dvc_train_dependency() -> None:
    """A dataset added to the recipe must retrain under `dvc repro` when its prepared data changes."""
    cfg = load_params(ROOT / "params.yaml")
    train_deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]["deps"]
    for name in cfg.train.datasets:
        assert name in cfg.prepare.datasets and name not in cfg.prepare.skip
        assert f"data/prepared/{name}" in train_deps


def test_passages_profile_adds_passage_lists_to_the_default_recipe() -> None:
    """profiles/passages.yaml is docs/recipe.md row 22: the default plus WikiQA pages as 3-sentence passages."""
    full = load_params(ROOT / "params.yaml")
    passages = load_params(ROOT / "params.yaml", profile="passages")
    assert "wikiqa-train-passage-lists" not in full.prepare.datasets
    entry = passages.prepare.datasets["wikiqa-train-passage-lists"]
    assert entry.passages is not None and entry.passages.size == 3
    assert entry.teacher is not None and entry.mining is not None and entry.mining.keep_labelled
    assert list(passages.train.datasets) == [*full.train.datasets, "wikiqa-train-passage-lists"]
    assert passages.train.datasets["wikiqa-train-passage-lists"].loss == "LambdaLoss"
    scifact, default_scifact = (cfg.prepare.datasets["scifact-train-lists"].mining for cfg in (passages, full))
    assert scifact is not None and default_scifact is not None
    assert (scifact.num_negatives, default_scifact.num_negatives) == (4, 7)
    assert scifact.range_max == default_scifact.range_max  # only the count changes
    assert passages.train.epochs == 1.25 and passages.train.learning_rate == full.train.learning_rate


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = default_params()
    data["train"]["learnig_rate"] = 1e-4
    with pytest.raises(ConfigError, match=r"unknown key 'train.learnig_rate'"):
        load_params(write_params(tmp_path, data))


def test_wrong_type_is_named_with_the_value(tmp_path: Path) -> None:
    data = default_params()
    data["train"]["batch_size"] = "thirty-two"
    with pytest.raises(ConfigError, match=r"'train.batch_size'.*thirty-two"):
        load_params(write_params(tmp_path, data))


def test_missing_section_is_named(tmp_path: Path) -> None:
    data = default_params()
    del data["evaluate"]
    with pytest.raises(ConfigError, match=r"missing key 'evaluate'"):
        load_params(write_params(tmp_path, data))


def test_overrides_and_unknown_profile(tmp_path: Path) -> None:
    cfg = load_params(ROOT / "params.yaml", overrides={"train": {"epochs": 2}})
    assert cfg.train.epochs == 2
    with pytest.raises(ConfigError, match="Unknown profile 'fast'"):
        load_params(ROOT / "params.yaml", profile="fast")
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")


def test_set_overrides_parse_yaml_values() -> None:
    from tasks.config import parse_set_overrides

    assert parse_set_overrides(["train.epochs=2", "train.learning_rate=1e-4", "push.repo_id=org/name"]) == {
        "train": {"epochs": 2, "learning_rate": 1e-4},
        "push": {"repo_id": "org/name"},
    }
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_set_overrides(["epochs=2"])


def test_stages_may_only_name_built_datasets(tmp_path: Path) -> None:
    data = default_params()
    data["train"]["datasets"] = {"wikiqa-trian": {"loss": "BinaryCrossEntropyLoss"}}
    with pytest.raises(ConfigError, match=r"train.datasets.wikiqa-trian is not a built dataset"):
        load_params(write_params(tmp_path, data))
    data = default_params()
    data["prepare"]["skip"] = ["wikiqa-test"]
    with pytest.raises(ConfigError, match=r"evaluate.suite.wikiqa_test.dataset 'wikiqa-test' is not a built dataset"):
        load_params(write_params(tmp_path, data))


@pytest.mark.parametrize(
    ("evaluator", "says"),
    [
        (
            {"kind": "reranking", "dataset": "wikiqa-train"},
            "evaluate.suite.mine (reranking) reads a dataset in reranking or listwise format; 'wikiqa-train' is pairs",
        ),
        (
            {"kind": "classification", "dataset": "wikiqa-test"},
            "evaluate.suite.mine (classification) reads a dataset in pairs format; 'wikiqa-test' is reranking",
        ),
        (
            {"kind": "correlation", "dataset": "trec-dl19"},
            "evaluate.suite.mine (correlation) reads a dataset in pairs format; 'trec-dl19' is listwise",
        ),
        (
            {"kind": "correlation", "dataset": "wikiqa-train"},
            "evaluate.suite.mine.split 'test': dataset 'wikiqa-train' has the splits ['train']",
        ),
        (
            {"kind": "reranking", "dataset": "wikiqa-test", "first_stage": "file"},
            "evaluate.suite.mine.first_stage is file, but 'wikiqa-test' is in reranking format",
        ),
    ],
)
def test_an_evaluator_of_the_wrong_kind_for_its_data_fails_at_load(tmp_path: Path, evaluator: dict, says: str) -> None:
    data = default_params()
    data["evaluate"]["suite"]["mine"] = evaluator
    with pytest.raises(ConfigError) as error:
        load_params(write_params(tmp_path, data))
    assert says in str(error.value)


def test_promotion_metric_and_guards_must_be_suite_metrics(tmp_path: Path) -> None:
    cfg = load_params(ROOT / "params.yaml", overrides={"promote": {"guards": {"scifact_dev_ndcg@10": 0.01}}})
    assert cfg.promote.metric == "wikiqa_test_ndcg@10" and cfg.promote.guards == {"scifact_dev_ndcg@10": 0.01}
    for override, key in [
        ({"metric": "wikiqa_ndcg@10"}, "promote.metric"),
        ({"guards": {"nope_map": 0.1}}, "promote.guards.nope_map"),
    ]:
        with pytest.raises(ConfigError, match=rf"{key}: '[a-z_@0-9]+' is not a metric of evaluate.suite"):
            load_params(ROOT / "params.yaml", overrides={"promote": override})


def test_a_profile_can_replace_a_mapping_instead_of_merging_into_it(tmp_path: Path) -> None:
    profile = tmp_path / "mine.yaml"
    profile.write_text(
        "replace: [train.datasets, evaluate.suite]\n"
        "train:\n  datasets:\n    scifact-train-lists: {loss: ListNetLoss}\n"
        "evaluate:\n  suite:\n    trec: {kind: beir, folder: data/raw/msmarco-trec-dl19}\n"
        "promote: {metric: trec_ndcg@10}\n"
    )
    cfg = load_params(ROOT / "params.yaml", profile=str(profile))
    assert list(cfg.train.datasets) == ["scifact-train-lists"]
    assert cfg.train.datasets["scifact-train-lists"].loss == "ListNetLoss"
    assert list(cfg.evaluate.suite) == ["trec"]
    # A later layer without `replace` merges into the replaced mapping as usual.
    overrides = {"train": {"datasets": {"scifact-train-lists": {"max_rows": 5}}}}
    merged = load_params(ROOT / "params.yaml", profile=str(profile), overrides=overrides)
    assert list(merged.train.datasets) == ["scifact-train-lists"]
    assert merged.train.datasets["scifact-train-lists"].max_rows == 5
    assert merged.train.datasets["scifact-train-lists"].loss == "ListNetLoss"


def test_replace_from_the_command_line_and_its_mistakes(tmp_path: Path) -> None:
    from tasks.config import parse_set_overrides

    overrides = parse_set_overrides(["train.epochs=2"], ["train.datasets={scifact-train-lists: {loss: ListNetLoss}}"])
    assert overrides["replace"] == ["train.datasets"]
    cfg = load_params(ROOT / "params.yaml", overrides=overrides)
    assert list(cfg.train.datasets) == ["scifact-train-lists"] and cfg.train.epochs == 2
    profile = tmp_path / "bad.yaml"
    profile.write_text("replace: [train.datasets]\ntrain: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=r"'replace' names train.datasets, which this file does not set"):
        load_params(ROOT / "params.yaml", profile=str(profile))
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text() + "replace: [train.datasets]\n")
    with pytest.raises(ConfigError, match="'replace' belongs in a profile"):
        load_params(params)


def test_a_partial_params_file_takes_defaults_for_the_sections_it_leaves_out(tmp_path: Path) -> None:
    data = {
        "prepare": {"datasets": {"mine": {"source": {"kind": "file", "path": "data/mine.csv"}, "format": "pairs",
                                          "split": {"fractions": {"train": 0.8, "test": 0.2}}}}},
        "train": {"datasets": {"mine": {"loss": "BinaryCrossEntropyLoss"}}},
        "evaluate": {"suite": {"mine_test": {"kind": "classification", "dataset": "mine"}}},
    }  # fmt: skip
    cfg = load_params(write_params(tmp_path, data))
    assert cfg.register.registered_model == "reranker" and cfg.card.model_name == "Cross-encoder reranker"
    assert cfg.promote.metric is None and cfg.tracking.tracking_uri == "sqlite:///mlflow.db"
    assert cfg.evaluate.bi_encoder is None and cfg.train.evaluation.steps is None
