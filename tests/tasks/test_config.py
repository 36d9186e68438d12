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
    assert quick.train.datasets["wikiqa-train-lists"].max_rows == 48
    assert quick.train.datasets["wikiqa-train-lists"].loss == full.train.datasets["wikiqa-train-lists"].loss
    assert "scifact-train" in quick.prepare.skip and "scifact-train" in quick.prepare.datasets
    assert quick.evaluate.beir == {} and full.evaluate.beir
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
    with pytest.raises(ConfigError, match=r"evaluate.wikiqa_test 'wikiqa-test' is not a built dataset"):
        load_params(write_params(tmp_path, data))
