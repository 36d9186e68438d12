"""Losses by name from params.yaml, checked before any model is loaded."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

import rerank_lib.losses as losses_module
from rerank_lib.errors import ConfigError

# Options given as a class name (e.g. ``weighting_scheme: NDCGLoss2PPScheme``) become instances.
CLASS_OPTIONS = ("weighting_scheme", "lambda_weight")


def available_losses() -> dict[str, type[nn.Module]]:
    return {
        name: getattr(losses_module, name)
        for name in getattr(losses_module, "__all__", dir(losses_module))
        if name.endswith("Loss") and isinstance(getattr(losses_module, name, None), type)
    }


def check_loss(key: str, name: str, options: dict[str, Any]) -> type[nn.Module]:
    """The loss class, or a ConfigError naming ``key`` for an unknown loss or option."""
    known = available_losses()
    if name not in known:
        raise ConfigError(f"{key}.loss: unknown loss {name!r}; known losses: {sorted(known)}.")
    cls = known[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "model")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"{key}.loss_options: {name} has no option(s) {unknown}; it accepts {accepted}.")
    return cls


def build_loss(key: str, name: str, options: dict[str, Any], model: nn.Module) -> nn.Module:
    """Instantiate a loss for ``model`` with options from params (class names resolved for scheme options)."""
    cls = check_loss(key, name, options)
    resolved = dict(options)
    for option in CLASS_OPTIONS:
        value = resolved.get(option)
        if isinstance(value, (str, dict)):
            resolved[option] = _scheme(f"{key}.loss_options.{option}", value)
    try:
        return cls(model, **resolved)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}: cannot build {name} with {options}: {error}") from error


def _scheme(key: str, value: str | dict[str, Any]) -> Any:
    """A scheme instance from its class name, or from ``{class: Name, option: value, ...}`` (e.g. a convention)."""
    spec = {"class": value} if isinstance(value, str) else dict(value)
    name = spec.pop("class", None)
    scheme = getattr(losses_module, name, None) if isinstance(name, str) else None
    if not isinstance(scheme, type):
        raise ConfigError(f"{key}: unknown class {name!r} in rerank_lib.losses.")
    try:
        return scheme(**spec)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}: cannot build {name} with {spec}: {error}") from error
