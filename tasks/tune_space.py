"""The tune space: what a trial samples, how its values become params, and the check that every value is valid.

A trial's values are dotted params keys (``train.learning_rate: 6e-5``); a ``variants`` parameter contributes the
keys of the bundle it took. They are laid over the effective params exactly as ``--set`` would, and validated as
params are, so a trial never runs a config that ``rerank run`` would refuse; :func:`check_space` validates every
range end, choice and variant before the first trial starts, naming the space key of a value that does not fit.
"""

from __future__ import annotations

from typing import Any

from rerank_lib.errors import ConfigError
from tasks.param_sources import deep_merge, value_at
from tasks.tune_config import Categorical, FloatRange, IntRange, TuneConfig, Variants


def nested(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"train.epochs": 2}`` as ``{"train": {"epochs": 2}}``."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def as_settings(space: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A trial's values (variants by name) as dotted params keys, in the order of the space."""
    settings: dict[str, Any] = {}
    for key, param in space.items():
        if key not in values:
            continue
        if isinstance(param, Variants):
            settings.update(param.variants[values[key]])
        else:
            settings[key] = values[key]
    return settings


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """Ask an optuna trial for one value per space parameter."""
    values: dict[str, Any] = {}
    for key, param in space.items():
        if isinstance(param, FloatRange):
            values[key] = trial.suggest_float(key, param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, IntRange):
            values[key] = trial.suggest_int(key, param.low, param.high, step=param.step, log=param.log)
        elif isinstance(param, Categorical):
            values[key] = trial.suggest_categorical(key, param.choices)
        else:
            values[key] = trial.suggest_categorical(key, list(param.variants))
    return values


def params_values(space: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The space's values that give ``params`` back unchanged, and why the keys the space cannot express fail.

    ``params``: the effective params, defaults included. A variant is taken when its bundle changes nothing (the
    most specific such bundle: ``layer_decay_0.9`` over ``full: {}`` when the decay is 0.9).
    """
    values: dict[str, Any] = {}
    misses: list[str] = []
    for key, param in space.items():
        if isinstance(param, Variants):
            same = [name for name, bundle in param.variants.items() if deep_merge(params, nested(bundle)) == params]
            if same:
                values[key] = max(same, key=lambda name: len(param.variants[name]))
            else:
                misses.append(f"{key}: no variant leaves the params as they are")
            continue
        value = value_at(params, key.split("."))
        if param.contains(value):
            values[key] = value
        else:
            misses.append(f"{key}: {value!r} is not in the space")
    return values, misses


def grid(space: dict[str, Any]) -> dict[str, list[Any]]:
    """The grid sampler's search space: every choice, and every step of a stepped range."""
    points: dict[str, list[Any]] = {}
    for key, param in space.items():
        if isinstance(param, IntRange):
            points[key] = list(range(param.low, param.high + 1, param.step))
        elif isinstance(param, FloatRange):
            assert param.step is not None  # the config refuses a grid over a range without a step
            count = int(round((param.high - param.low) / param.step))
            points[key] = [round(param.low + index * param.step, 12) for index in range(count + 1)]
        else:
            points[key] = param.values()
    return points


def trial_params(base: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The params a trial runs with: the effective params (without ``tune``) and the trial's settings over them."""
    params = {key: value for key, value in base.items() if key != "tune"}
    return deep_merge(params, nested(settings))


def trial_config(base: dict[str, Any], settings: dict[str, Any], what: str) -> Any:
    """The validated params of a trial; an invalid value is a ConfigError naming ``what`` set it."""
    from pydantic import ValidationError

    from tasks.config import PipelineConfig
    from tasks.param_checks import check_train_config

    try:
        cfg = PipelineConfig.model_validate(trial_params(base, settings))
        check_train_config(cfg.train)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{what} gives invalid params: {problems}") from error
    except ConfigError as error:
        raise ConfigError(f"{what} gives invalid params: {error}") from error
    return cfg


def check_space(tune: TuneConfig, base: dict[str, Any], judged: set[str]) -> None:
    """Every value of the space (range ends, choices, variants) gives valid params and leaves the dev data alone.

    ``judged``: the catalog entries the dev and evaluate suites read; a trial may not change how they are built.
    """
    for key, param in tune.space.items():
        names = list(param.variants.values()) if isinstance(param, Variants) else [{key: None}]
        for dotted in (name for bundle in names for name in bundle):
            parts = dotted.split(".")
            if parts[:2] == ["prepare", "datasets"] and len(parts) > 2 and parts[2] in judged:
                raise ConfigError(
                    f"tune.space.{key}: {dotted} changes {parts[2]!r}, which the dev or evaluate suite reads"
                )
        for value in param.values():
            trial_config(base, as_settings({key: param}, {key: value}), f"tune.space.{key} = {value!r}")
