"""What a model card says, collected from training and evaluation rather than written by hand.

Everything here is plain data (JSON-serialisable through ``ModelCardData.to_dict`` / ``from_dict``), so the trainer
can collect it during training, a pipeline stage can store it in a file, and ``render_model_card`` can turn it into
a README later. ``rerank_lib.model_card.collect`` has helpers that fill these fields from a trainer, a dataset, a
loss and evaluator results.

Field guide for whoever fills a card (all optional unless marked required):

``ModelCardData``
    model_name (required): the card's title.
    base_model (required, may be ""): Hub id of the model that was fine-tuned; "" when unknown. A value that is not
        a Hub id (a local path) is shown in the text but left out of the YAML header.
    num_labels, max_length, activation_fn (required): from the model (``activation_fn`` as an import path).
    model_id: the Hub repo id the model will live at; used in the usage snippets.
    language, license: header fields, shown when set. ``language`` may be one code or a list.
    library_name: header ``library_name`` (default ``rerank_lib``).
    tags: extra header tags, added after the automatic ones.
    datasets: training datasets (``DatasetInfo``); their ``hub_id``s form the header ``datasets`` list. Column
        statistics go in ``DatasetInfo.column_stats`` (``ColumnStats`` or plain dicts with the same keys).
    eval_datasets: evaluation datasets given to the trainer (``DatasetInfo``), shown like training datasets.
    losses: one ``LossInfo`` per loss (per dataset when each dataset has its own loss).
    evaluations: one ``EvaluationInfo`` per evaluator and dataset; the same ``evaluator`` on several datasets
        is shown in one table. ``EvaluationInfo.baseline`` holds the first-stage metrics for ``0.62 (+0.28)``.
    hyperparameters: ALL training hyperparameters (shown collapsed).
    non_default_hyperparameters: only those that differ from the defaults (shown first, open).
    log_history: ``trainer.state.log_history`` as is (training and evaluation entries).
    best_step: global step of the checkpoint that was kept (``trainer.state.best_global_step``); bold in the log.
    global_step: total optimisation steps.
    training_seconds: wall-clock training time.
    co2_eq_emissions: measured emissions, e.g. from CodeCarbon: ``{"emissions": grams CO2eq, "energy_consumed":
        kWh, "source": "codecarbon", "training_type": "fine-tuning", "on_cloud": False, "cpu_model": ...,
        "gpu_model": ..., "ram_total_size": GB, "hours_used": h, "hardware_used": "1 x A100"}``. None: not measured.
    framework_versions: filled automatically when empty.
    package: set when the folder is a rerank package (:mod:`rerank_lib.package`): ``{"share": 0.3, "first_stage":
        "bi-encoder", "first_stage_model": Hub id or name, "normalization": "dev-standard", "scales": {...}}``; the
        card then says what scores what, on which scale, and how to load it.
    comparison: rows of the side-by-side table ``{"evaluator", "metric", "bm25", "bi_encoder", "cross_encoder",
        "shipped"}`` (a value may be None): the baselines, the cross-encoder alone and what ships, per metric.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
from dataclasses import dataclass, field
from typing import Any

from rerank_lib.version import __version__

logger = logging.getLogger(__name__)


@dataclass
class ColumnStats:
    """One column summarised over a sample of rows (up to 1,000), for the training-data table.

    ``dtype`` is ``string``, ``list``, ``int``, ``float``, ``bool`` or ``mixed``. For strings the numbers are
    lengths in characters, for lists numbers of elements, for numbers the values themselves.
    """

    dtype: str
    min: float | None = None
    mean: float | None = None
    max: float | None = None
    rows: int = 0

    @property
    def unit(self) -> str:
        return {"string": "characters", "list": "elements"}.get(self.dtype, "")

    def describe(self) -> str:
        """e.g. ``min: 4 characters, mean: 31.2 characters, max: 118 characters``."""
        if self.min is None or self.mean is None or self.max is None:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        as_int = self.dtype in ("string", "list", "int", "bool")
        low = f"{self.min:.0f}" if as_int else f"{self.min:.4g}"
        high = f"{self.max:.0f}" if as_int else f"{self.max:.4g}"
        return f"min: {low}{unit}, mean: {self.mean:.2f}{unit}, max: {high}{unit}"


@dataclass
class DatasetInfo:
    """One training (or evaluation) dataset.

    Args:
        name: display name (free text; escaped when rendered).
        size: number of rows used.
        columns: column names in the order the loss reads them.
        examples: up to three example rows (``{column: value}``).
        column_stats: ``{column: ColumnStats}`` computed on up to 1,000 rows (``collect.column_stats``).
        hub_id: the Hub dataset id (``microsoft/wiki_qa``); listed in the YAML ``datasets`` and linked.
        split: which split was used.
        loss: name of the loss applied to this dataset, when datasets have different losses.
    """

    name: str
    size: int
    columns: list[str]
    examples: list[dict[str, Any]]
    column_stats: dict[str, ColumnStats] = field(default_factory=dict)
    hub_id: str | None = None
    split: str = "train"
    loss: str | None = None

    def __post_init__(self) -> None:
        # Collectors may hand over plain dicts ({"dtype", "min", "mean", "max", "rows", ...}); extra keys are ignored.
        self.column_stats = {column: _from_dict(ColumnStats, stats) for column, stats in self.column_stats.items()}


@dataclass
class LossInfo:
    """A loss, its settings (``loss.get_config_dict()``) and its BibTeX (``loss.citation``)."""

    name: str
    config: dict[str, Any]
    citation: str = ""
    dataset: str | None = None


@dataclass
class EvaluationInfo:
    """One evaluator's results on one dataset.

    Args:
        evaluator: the evaluator kind, usually its class name; equal kinds share one table.
        dataset: display name of the evaluation dataset (the evaluator's ``name``).
        metrics: ``{metric: value}`` without the evaluator prefix (``ndcg@10``, not ``wikiqa_ndcg@10``).
        primary_metric: the metric that selected the model; shown bold.
        baseline: the same metrics for the first-stage ranking (``base_*`` results); shown as deltas.
        dataset_id: Hub dataset id for the header's ``model-index``.
        task_type: model-index task type; default inferred from ``evaluator``.
        config: the evaluator's settings (``get_config_dict()``).
    """

    evaluator: str
    dataset: str
    metrics: dict[str, float]
    primary_metric: str | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    dataset_id: str | None = None
    task_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_results(
        cls,
        evaluator: str,
        dataset: str,
        results: dict[str, float],
        prefix: str = "",
        primary_metric: str | None = None,
        baseline_prefix: str = "base_",
        **kwargs: Any,
    ) -> EvaluationInfo:
        """Split an evaluator's result dict into metrics and first-stage baseline (``base_*`` keys)."""
        metrics: dict[str, float] = {}
        baseline: dict[str, float] = {}
        for key, value in results.items():
            name = key[len(prefix) :] if prefix and key.startswith(prefix) else key
            if baseline_prefix and name.startswith(baseline_prefix):
                baseline[name[len(baseline_prefix) :]] = float(value)
            else:
                metrics[name] = float(value)
        if primary_metric and prefix and primary_metric.startswith(prefix):
            primary_metric = primary_metric[len(prefix) :]
        return cls(evaluator, dataset, metrics, primary_metric or None, baseline, **kwargs)


@dataclass
class ModelCardData:
    """Everything the card shows; see the module docstring for what each field means and who fills it."""

    model_name: str
    base_model: str
    num_labels: int
    max_length: int
    activation_fn: str
    model_id: str | None = None
    language: str | list[str] | None = None
    license: str | None = None
    library_name: str = "rerank_lib"
    tags: list[str] = field(default_factory=list)
    datasets: list[DatasetInfo] = field(default_factory=list)
    eval_datasets: list[DatasetInfo] = field(default_factory=list)
    losses: list[LossInfo] = field(default_factory=list)
    evaluations: list[EvaluationInfo] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    non_default_hyperparameters: dict[str, Any] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int | None = None
    global_step: int | None = None
    training_seconds: float | None = None
    co2_eq_emissions: dict[str, Any] | None = None
    framework_versions: dict[str, str] = field(default_factory=dict)
    package: dict[str, Any] | None = None
    comparison: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.framework_versions:
            self.framework_versions = collect_framework_versions()

    @property
    def dataset_ids(self) -> list[str]:
        """Hub ids of the training datasets, in order, without duplicates: the header's ``datasets``."""
        ids: list[str] = []
        for dataset in self.datasets:
            if dataset.hub_id and dataset.hub_id not in ids:
                ids.append(dataset.hub_id)
        return ids

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (values that JSON cannot hold should be converted by the collector)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCardData:
        """Rebuild from ``to_dict`` output; unknown keys are logged and ignored so older readers keep working."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            logger.warning("Ignoring unknown model card fields: %s", unknown)
        values = {key: value for key, value in data.items() if key in known}
        for key in ("datasets", "eval_datasets"):
            values[key] = [_dataset_from_dict(item) for item in values.get(key, [])]
        values["losses"] = [_from_dict(LossInfo, item) for item in values.get("losses", [])]
        values["evaluations"] = [_from_dict(EvaluationInfo, item) for item in values.get("evaluations", [])]
        return cls(**values)


def _from_dict(kind: type, item: Any) -> Any:
    if isinstance(item, kind):
        return item
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{key: value for key, value in dict(item).items() if key in names})


def _dataset_from_dict(item: Any) -> DatasetInfo:
    if isinstance(item, DatasetInfo):
        return item
    values = dict(item)
    values["column_stats"] = dict(values.get("column_stats") or {})
    return _from_dict(DatasetInfo, values)


def collect_framework_versions() -> dict[str, str]:
    """Versions of the libraries that produced the model, for reproducibility."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"Python": platform.python_version(), "rerank_lib": __version__}
    for package in ("transformers", "torch", "accelerate", "datasets", "tokenizers", "huggingface_hub"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
