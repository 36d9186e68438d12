"""What a model card says, collected from training and evaluation rather than written by hand."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DatasetInfo:
    name: str
    size: int
    columns: list[str]
    examples: list[dict[str, Any]]


@dataclass
class LossInfo:
    name: str
    config: dict[str, Any]
    citation: str = ""


@dataclass
class EvaluationInfo:
    """One evaluator's results on one dataset."""

    evaluator: str
    dataset: str
    metrics: dict[str, float]
    primary_metric: str | None = None


@dataclass
class ModelCardData:
    model_name: str
    base_model: str
    num_labels: int
    max_length: int
    activation_fn: str
    model_id: str | None = None
    language: str | None = None
    license: str | None = None
    datasets: list[DatasetInfo] = field(default_factory=list)
    losses: list[LossInfo] = field(default_factory=list)
    evaluations: list[EvaluationInfo] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    training_seconds: float | None = None
    framework_versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.framework_versions:
            self.framework_versions = collect_framework_versions()


def collect_framework_versions() -> dict[str, str]:
    """Versions of the libraries that produced the model, for reproducibility."""
    from importlib.metadata import PackageNotFoundError, version

    import rerank_lib

    versions = {"Python": platform.python_version(), "rerank_lib": rerank_lib.__version__}
    for package in ("transformers", "torch", "accelerate", "datasets", "tokenizers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
