"""Where params come from: params.yaml, then a profile, then ``--set`` overrides, merged in that order.

A profile is a name (``profiles/<name>.yaml`` beside the params file) or a path to any YAML file. Mappings merge
key by key, and ``{}`` empties one. A profile's top-level ``replace:`` lists the mappings it replaces instead of
merging into them, so a profile can leave the demo's datasets behind::

    replace: [train.datasets, evaluate.suite]
    train:
      datasets: {mine: {loss: LambdaLoss}}

(``rerank --replace train.datasets=...`` does the same for one run). The key is plain YAML on purpose: DVC reads
profile files as params files, and it refuses YAML tags. Every value remembers which source set it, so an error
names the file (or ``--set``) that holds the bad value.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rerank_lib.errors import ConfigError

PROFILES_FOLDER = "profiles"
SET_SOURCE = "--set"
REPLACE_KEY = "replace"
_MISSING = object()  # value_at's default when a caller must tell a null from no key


@dataclass(frozen=True)
class ParamSource:
    """One layer of params: where it came from (a file path or ``--set``) and what it sets."""

    label: str
    data: dict[str, Any]
    replace: tuple[str, ...] = ()  # dotted paths of mappings this layer replaces instead of merging into


def load_yaml_text(text: str) -> Any:
    return yaml.safe_load(text)


def layer(label: str, data: dict[str, Any], may_replace: bool) -> ParamSource:
    """A params layer; its ``replace`` list (profiles and overrides only) is checked and taken out of the data."""
    data = dict(data)
    replace = data.pop(REPLACE_KEY, [])
    if replace and not may_replace:
        raise ConfigError(f"{label}: '{REPLACE_KEY}' belongs in a profile (or --replace), not in the params file.")
    if not isinstance(replace, list) or not all(isinstance(path, str) and path for path in replace):
        raise ConfigError(f"{label}: '{REPLACE_KEY}' must be a list of dotted keys, e.g. [train.datasets].")
    for path in replace:
        if not sets(data, path.split(".")):
            raise ConfigError(f"{label}: '{REPLACE_KEY}' names {path}, which this file does not set.")
    return ParamSource(label, data, tuple(replace))


def read_yaml(path: str | Path, label: str = "Config file") -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file and what it is for (``label``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{label} {path} does not exist.")
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{label} {path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label} {path} must hold a mapping, got {type(data).__name__}.")
    return data


def profile_path(profile: str, profiles_root: Path) -> Path:
    """A profile name (``quick``: ``<root>/profiles/quick.yaml``) or a path to a YAML file."""
    if "/" in profile or "\\" in profile or profile.endswith((".yaml", ".yml")):
        path = Path(profile).expanduser()
        if not path.is_absolute() and not path.is_file() and (profiles_root / path).is_file():
            path = profiles_root / path
        if not path.is_file():
            raise ConfigError(f"Profile file {path} does not exist.")
        return path
    path = profiles_root / PROFILES_FOLDER / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (profiles_root / PROFILES_FOLDER).glob("*.yaml"))
        raise ConfigError(f"Unknown profile {profile!r} (no {path}); known profiles: {known}, or give a file path.")
    return path


def param_sources(
    path: str | Path,
    profile: str | None,
    overrides: dict[str, Any] | None,
    profiles_root: Path | None = None,
    set_from: list[str] | tuple[str, ...] = (),
) -> list[ParamSource]:
    """The params layers in merge order: the params file, the profile (if any), each ``--set-from`` file (values
    only, e.g. a tune study's best.yaml), the ``--set`` overrides (if any)."""
    sources = [layer(str(path), read_yaml(path, "Params file"), may_replace=False)]
    if profile is not None:
        found = profile_path(profile, Path(profiles_root) if profiles_root else Path(path).resolve().parent)
        sources.append(layer(str(found), read_yaml(found, "Profile"), may_replace=True))
    for values in set_from:
        values_path = Path(values).expanduser()
        sources.append(layer(str(values_path), read_yaml(values_path, "--set-from file"), may_replace=False))
    if overrides:
        sources.append(layer(SET_SOURCE, overrides, may_replace=True))
    return sources


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in, section by section (``{}`` empties a mapping)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and value and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_sources(sources: list[ParamSource]) -> dict[str, Any]:
    """The layers merged in order; each layer's ``replace`` paths drop what the layers below set there first."""
    merged: dict[str, Any] = {}
    for source in sources:
        for path in source.replace:
            *parents, leaf = path.split(".")
            node = merged
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(leaf, None)
        merged = deep_merge(merged, source.data)
    return merged


def source_of(key: tuple[Any, ...], sources: list[ParamSource]) -> str:
    """The label of the last source that sets ``key`` (or its closest parent that it sets)."""
    for depth in range(len(key), 0, -1):
        for source in reversed(sources):
            if sets(source.data, key[:depth]):
                return source.label
    return sources[0].label if sources else "params"


def value_at(data: Any, path: Sequence[Any], default: Any = None) -> Any:
    """The value at ``path`` (keys, outermost first) in nested mappings; ``default`` where a key is missing."""
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def sets(data: Any, path: Sequence[Any]) -> bool:
    """Whether nested mappings hold a value at ``path`` (a key set to null counts)."""
    return value_at(data, path, _MISSING) is not _MISSING
