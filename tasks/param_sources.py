"""Where params come from: params.yaml, then a profile, then ``--set`` overrides, merged in that order.

A profile is a name (``profiles/<name>.yaml`` beside the params file) or a path to any YAML file. Mappings merge
key by key; a mapping tagged ``!replace`` replaces the one below it instead (so a profile can drop the demo's
training datasets: ``train: {datasets: !replace {mine: {loss: LambdaLoss}}}``), and ``{}`` empties it. Every value
remembers which source set it, so an error names the file (or ``--set``) that holds the bad value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rerank_lib.errors import ConfigError

PROFILES_FOLDER = "profiles"
SET_SOURCE = "--set"


class Replace(dict):
    """A mapping that replaces the mapping below it instead of merging into it (YAML tag ``!replace``)."""


class ParamsLoader(yaml.SafeLoader):
    """YAML's safe loader plus the ``!replace`` tag."""


def _construct_replace(loader: ParamsLoader, node: yaml.Node) -> Replace:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, "!replace must tag a mapping", node.start_mark)
    return Replace(loader.construct_mapping(node, deep=True))


ParamsLoader.add_constructor("!replace", _construct_replace)


@dataclass(frozen=True)
class ParamSource:
    """One layer of params: where it came from (a file path or ``--set``) and what it sets."""

    label: str
    data: dict[str, Any]


def load_yaml_text(text: str) -> Any:
    return yaml.load(text, Loader=ParamsLoader)  # noqa: S506 - a SafeLoader subclass


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
    path: str | Path, profile: str | None, overrides: dict[str, Any] | None, profiles_root: Path | None = None
) -> list[ParamSource]:
    """The params layers in merge order: the params file, the profile (if any), the ``--set`` overrides (if any)."""
    sources = [ParamSource(str(path), read_yaml(path, "Params file"))]
    if profile is not None:
        found = profile_path(profile, Path(profiles_root) if profiles_root else Path(path).resolve().parent)
        sources.append(ParamSource(str(found), read_yaml(found, "Profile")))
    if overrides:
        sources.append(ParamSource(SET_SOURCE, overrides))
    return sources


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in, section by section (see the module docstring)."""
    merged = _plain(base)
    for key, value in override.items():
        if isinstance(value, dict) and value and not isinstance(value, Replace) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _plain(value)
    return merged


def merge_sources(sources: list[ParamSource]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in sources:
        merged = deep_merge(merged, source.data)
    return merged


def _plain(value: Any) -> Any:
    """A deep copy with every ``Replace`` turned back into a plain dict."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return copy.deepcopy(value)


def source_of(key: tuple[Any, ...], sources: list[ParamSource]) -> str:
    """The label of the last source that sets ``key`` (or its closest parent that it sets)."""
    for depth in range(len(key), 0, -1):
        for source in reversed(sources):
            if _sets(source.data, key[:depth]):
                return source.label
    return sources[0].label if sources else "params"


def _sets(data: Any, key: tuple[Any, ...]) -> bool:
    node = data
    for part in key:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
