"""dvc.yaml from params: every stage names exactly the data, code and params sections it reads.

A team's catalog names its own files, so the stage graph cannot be written once by hand: `rerank dvc-yaml` writes
dvc.yaml from the effective params (params.yaml, plus a profile when one is given, whose file then becomes a params
dependency too), and a test keeps the committed dvc.yaml in step with params.yaml. Prepare depends on every source
file or folder of the catalog wherever it lives; train on the prepared datasets it trains on; evaluate on the trained
model and every dataset or BEIR folder of the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.catalog import BeirSource, DatasetEntry, FileSource
from tasks.config import PipelineConfig
from tasks.evaluate_config import BeirEvaluation
from tasks.held_out import beir_folder
from tasks.layout import STAGE_ORDER
from tasks.param_sources import sets

DVC_FILE = "dvc.yaml"
HEADER = (
    "# Generated from params.yaml by `rerank dvc-yaml` (edit params, then run it again; `make repro` does).\n"
    "# Each stage runs the same function as the Prefect flow and depends on exactly the data, code and params\n"
    "# sections it reads.\n"
)
# The code each stage runs, besides the stage module itself (paths that do not exist are left out).
CODE = {
    "prepare": [
        "rerank_lib/data",
        "rerank_lib/retrieval",
        "rerank_lib/bi_encoder.py",
        "rerank_lib/embedding_cache.py",
        "tasks/prepare.py",
        "tasks/catalog.py",
    ],
    "train": [
        "rerank_lib/model.py",
        "rerank_lib/adapters.py",
        "rerank_lib/causal_lm.py",
        "rerank_lib/prompts.py",
        "rerank_lib/training",
        "rerank_lib/losses",
        "rerank_lib/evaluation",
        "rerank_lib/retrieval",
        "rerank_lib/fusion.py",
        "rerank_lib/bi_encoder.py",
        "tasks/train.py",
        "tasks/train_evaluation.py",
        "tasks/checkpoints.py",
        "tasks/losses.py",
    ],
    "package": [
        "rerank_lib/package.py",
        "rerank_lib/mixed_scorer.py",
        "rerank_lib/model.py",
        "rerank_lib/bi_encoder.py",
        "rerank_lib/evaluation",
        "rerank_lib/retrieval",
        "tasks/package.py",
        "tasks/package_choice.py",
        "tasks/dev_eval.py",
        "tasks/evaluation_suite.py",
    ],
    "evaluate": [
        "rerank_lib/evaluation",
        "rerank_lib/retrieval",
        "rerank_lib/model.py",
        "rerank_lib/adapters.py",
        "rerank_lib/causal_lm.py",
        "rerank_lib/prompts.py",
        "rerank_lib/fusion.py",
        "rerank_lib/package.py",
        "rerank_lib/bi_encoder.py",
        "rerank_lib/mixed_scorer.py",
        "tasks/evaluate.py",
        "tasks/evaluation_suite.py",
    ],
    "card": ["rerank_lib/model_card", "tasks/card.py"],
    "register": ["tasks/register.py", "tasks/promote.py", "tasks/mlflow_model_code.py"],
    "push": ["rerank_lib/hub.py", "tasks/push.py"],
}
PARAMS = {
    "prepare": ["prepare"],
    "train": ["train"],
    "package": ["package", "dev"],
    "evaluate": ["evaluate"],
    "card": ["card", "prepare.datasets", "train.datasets"],
    "register": ["register", "tracking", "promote"],
    "push": ["push"],
}
EVALUATION_FILES = ["artifacts/eval/metrics.json", "artifacts/eval/report.json"]
PLOTS = [
    {"training loss": {"template": "linear", "x": "step", "y": {"artifacts/trained/training_log.csv": "loss"}}},
    {
        "evaluation during training": {
            "template": "linear",
            "x": "step",
            "y": {"artifacts/trained/eval_log.csv": ["ndcg_at_10", "mrr_at_10", "map", "bm25_ndcg_at_10"]},
        }
    },
]


def source_paths(entry: DatasetEntry) -> list[str]:
    """The files or folders a catalog entry reads, as written in params (a glob becomes its fixed folder)."""
    source = entry.source
    if isinstance(source, BeirSource):
        return [source.folder]
    if isinstance(source, FileSource):
        paths = source.path.values() if isinstance(source.path, dict) else [source.path]
        return [_without_glob(path) for path in paths]
    return []  # a Hub dataset: read from the local datasets cache, outside the project


def _without_glob(path: str) -> str:
    parts = Path(path).parts
    fixed = [part for part in parts[: next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), None)]]
    return str(Path(*fixed)) if fixed else "."


def stage_deps(cfg: PipelineConfig, stage: str) -> list[str]:
    """The data each stage reads, from params."""
    built = [name for name in cfg.prepare.datasets if name not in cfg.prepare.skip]
    if stage == "prepare":
        return sorted({path for name in built for path in source_paths(cfg.prepare.datasets[name])})
    if stage == "train":
        deps = [f"data/prepared/{name}" for name in cfg.train.datasets]
        if cfg.train.evaluation.steps is not None and cfg.train.evaluation.folder:
            deps.append(cfg.train.evaluation.folder)
        return deps
    if stage == "package":
        return ["artifacts/trained", *suite_data(cfg.dev.suite if cfg.dev is not None else {}, cfg)]
    if stage == "evaluate":
        return ["artifacts/packaged", *suite_data(cfg.evaluate.suite, cfg)]
    if stage == "card":
        first = next(iter(cfg.train.datasets))
        return [
            "artifacts/trained",
            "artifacts/packaged",
            "artifacts/eval/metrics.json",
            "artifacts/eval/report.json",
            f"data/prepared/{first}",
        ]
    if stage == "register":
        return ["artifacts/model", "artifacts/eval/metrics.json", "artifacts/eval/report.json"]
    return ["artifacts/model", "artifacts/registry.json"]


def suite_data(suite: dict[str, Any], cfg: PipelineConfig) -> list[str]:
    """The data a suite reads: prepared datasets and BEIR folders (with the entry whose queries it holds out)."""
    data: list[str] = []
    for spec in suite.values():
        if isinstance(spec, BeirEvaluation):
            data.append(beir_folder(spec, cfg.prepare.datasets))
        if spec.dataset is not None:
            data.append(f"data/prepared/{spec.dataset}")
    return list(dict.fromkeys(data))


OUTS: dict[str, list[Any]] = {
    "prepare": ["data/prepared"],
    "train": [{"artifacts/checkpoints": {"persist": True, "cache": False}}, "artifacts/trained"],
    "package": ["artifacts/packaged", {"artifacts/dev/package.json": {"cache": False}}],
    "evaluate": [{"artifacts/eval/details": {"cache": False}}, {"artifacts/eval/report.json": {"cache": False}}],
    "card": ["artifacts/model"],
    "register": [{"artifacts/registry.json": {"cache": False}}],
    "push": [{"artifacts/push.json": {"cache": False}}],
}


def has_key(data: dict, key: str) -> bool:
    """Whether a params mapping sets the dotted ``key`` (DVC refuses params keys a file does not have)."""
    return sets(data, key.split("."))


def _params(stage: str, params_file: str, params_data: dict, profile: str | None, profile_data: dict) -> list[Any]:
    """The params keys a stage reads, from each file that sets them (DVC refuses keys a file does not have)."""

    own = [key for key in PARAMS[stage] if has_key(params_data, key)]
    entries: list[Any] = own if params_file == "params.yaml" else ([{params_file: own}] if own else [])
    if profile is not None:
        overridden = [key for key in PARAMS[stage] if has_key(profile_data, key)]
        if overridden:
            entries.append({profile: overridden})
    return entries


def dvc_pipeline(
    cfg: PipelineConfig,
    root: Path,
    params_file: str = "params.yaml",
    params_data: dict | None = None,
    profile: str | None = None,
    profile_data: dict | None = None,
) -> dict[str, Any]:
    """The content of dvc.yaml for these params (``profile`` is the profile file's path relative to ``root``)."""
    options = ("" if params_file == "params.yaml" else f" --params {params_file}") + (
        f" --profile {profile}" if profile else ""
    )
    stages = {}
    for stage in STAGE_ORDER:
        code = [path for path in CODE[stage] if (Path(root) / path).exists()]
        definition: dict[str, Any] = {
            "cmd": f"python -m rerank_app.cli{options} stage {stage}",
            "deps": [*stage_deps(cfg, stage), *code],
        }
        params = _params(stage, params_file, params_data or {}, profile, profile_data or {})
        if params:
            definition["params"] = params
        definition["outs"] = OUTS[stage]
        if stage == "evaluate":
            definition["metrics"] = [{"artifacts/eval/metrics.json": {"cache": False}}]
        stages[stage] = definition
    return {"stages": stages, "plots": PLOTS}


def render(pipeline: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(pipeline, sort_keys=False, width=120)
