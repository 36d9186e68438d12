"""The tune space: values become params as --set would write them, and every value is checked before a trial runs."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import yaml

from rerank_lib.errors import ConfigError
from tasks.config import load_params
from tasks.tune import check_tune
from tasks.tune_config import TuneConfig
from tasks.tune_space import as_settings, grid, nested, params_values, suggest, trial_config

ROOT = Path(__file__).resolve().parents[2]


def params_with_space(tmp_path: Path, space: dict, **tune: object) -> Path:
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["tune"] = {"study": "s", "trials": 4, **tune, "space": space}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "params.yaml"


def test_values_and_variants_become_nested_params_and_valid_trial_configs() -> None:
    cfg = load_params(ROOT / "params.yaml")
    space = cfg.tune.space
    settings = as_settings(space, {"train.epochs": 1.4, "loss": "lambda_ndcg2", "route": "layer_decay_0.8"})
    assert settings == {
        "train.epochs": 1.4,
        "train.datasets.wikiqa-train-lists.loss": "LambdaLoss",
        "train.datasets.wikiqa-train-lists.loss_options": {"weighting_scheme": "NDCGLoss2Scheme"},
        "train.layerwise_lr_decay": 0.8,
    }
    assert nested({"train.epochs": 2, "train.seed": 3}) == {"train": {"epochs": 2, "seed": 3}}
    trial = trial_config(cfg.model_dump(mode="json", exclude_unset=True), settings, "a trial")
    assert trial.train.epochs == 1.4 and trial.train.layerwise_lr_decay == 0.8
    assert trial.train.datasets["wikiqa-train-lists"].loss_options == {"weighting_scheme": "NDCGLoss2Scheme"}
    assert trial.tune is None and trial.train.datasets["scifact-train-lists"].loss == "LambdaLoss"  # the rest kept


def test_the_default_space_is_valid_and_a_trial_samples_every_key() -> None:
    cfg = load_params(ROOT / "params.yaml")
    check_tune(cfg)
    trial = optuna.create_study().ask()
    assert set(suggest(trial, cfg.tune.space)) == set(cfg.tune.space)


def test_a_grid_enumerates_choices_and_stepped_ranges() -> None:
    tune = TuneConfig(
        study="g",
        trials=6,
        sampler={"kind": "grid"},
        space={
            "train.epochs": {"type": "float", "low": 1.0, "high": 2.0, "step": 0.5},
            "train.max_length": {"type": "categorical", "choices": [128, 256]},
        },
    )
    assert grid(tune.space) == {"train.epochs": [1.0, 1.5, 2.0], "train.max_length": [128, 256]}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.max_length": {"type": "categorical", "choices": [128, 4096]}}, r"tune.space.train.max_length = 4096"),
        (
            {"train.datasets.wikiqa-train-lists.loss": {"type": "categorical", "choices": ["LambdaLoss", "NoLoss"]}},
            r"tune.space.train.datasets.wikiqa-train-lists.loss = 'NoLoss' gives invalid params: .*unknown loss",
        ),
        (
            {"prepare.datasets.wikiqa-heldout.columns.query": {"type": "categorical", "choices": ["a", "b"]}},
            r"changes 'wikiqa-heldout', which the dev or evaluate suite reads",
        ),
    ],
)
def test_a_value_that_does_not_fit_fails_before_any_trial_naming_its_key(tmp_path: Path, space: dict, message: str):
    cfg = load_params(params_with_space(tmp_path, space))
    with pytest.raises(ConfigError, match=message):
        check_tune(cfg)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"evaluate.at_k": {"type": "categorical", "choices": [5, 10]}}, r"not a key of a section a trial may change"),
        (
            {"prepare.datasets.wikiqa-train-lists.split.seed": {"type": "int", "low": 1, "high": 3}},
            r"would move data between train and dev splits",
        ),
        ({"train.epochs": {"type": "float", "low": 2.0, "high": 1.0}}, r"low \(2.0\) must be below high"),
    ],
)
def test_a_space_outside_the_recipe_is_refused_when_params_load(tmp_path: Path, space: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_params(params_with_space(tmp_path, space))


def test_a_grid_over_a_continuous_range_is_refused(tmp_path: Path) -> None:
    space = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4}}
    with pytest.raises(ConfigError, match="the grid sampler needs a step"):
        load_params(params_with_space(tmp_path, space, sampler={"kind": "grid"}))


@pytest.mark.parametrize("profile", sorted(p.name for p in (ROOT / "profiles").glob("tune-*.yaml")))
def test_every_study_profile_loads_with_a_valid_space_of_its_own(profile: str) -> None:
    cfg = load_params(ROOT / "params.yaml", profile=str(ROOT / "profiles" / profile))
    check_tune(cfg)
    assert cfg.tune.study == profile.removeprefix("tune-").removesuffix(".yaml")  # one study, one database, per profile
    assert cfg.tune.sampler.kind == "grid" and cfg.tune.trials == math.prod(map(len, grid(cfg.tune.space).values()))


def test_the_space_values_of_the_params_as_they_are_train_the_params_unchanged() -> None:
    cfg = load_params(ROOT / "params.yaml")
    params = cfg.model_dump(mode="json")
    values, misses = params_values(cfg.tune.space, params)

    assert misses == [] and set(values) == set(cfg.tune.space)
    assert values["train.max_length"] == cfg.train.max_length and values["route"] == "full"  # no layer-wise decay
    trial = trial_config(cfg.model_dump(mode="json", exclude_unset=True), as_settings(cfg.tune.space, values), "t")
    assert trial.model_dump(mode="json", exclude={"tune"}) == {k: v for k, v in params.items() if k != "tune"}


def test_the_most_specific_variant_that_changes_nothing_is_taken_and_misses_are_named() -> None:
    cfg = load_params(ROOT / "params.yaml", overrides={"train": {"layerwise_lr_decay": 0.9, "max_length": 320}})
    values, misses = params_values(cfg.tune.space, cfg.model_dump(mode="json"))
    assert values["route"] == "layer_decay_0.9"  # "full: {}" changes nothing too, but says less
    assert misses == ["train.max_length: 320 is not in the space"]
    cfg = load_params(ROOT / "params.yaml", overrides={"train": {"layerwise_lr_decay": 0.7, "epochs": 1.5}})
    values, misses = params_values(cfg.tune.space, cfg.model_dump(mode="json"))
    assert values["route"] == "full" and misses == ["train.epochs: 1.5 is not in the space"]  # off the 0.2 step
