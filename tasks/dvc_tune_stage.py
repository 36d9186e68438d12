"""The tune stage for DVC, kept out of the default ``dvc repro``: ``tune/dvc.yaml``, run by ``dvc repro tune/dvc.yaml``.

``dvc repro`` reproduces the stages of the ``dvc.yaml`` in the working folder, so a study (hours of training) never
runs as part of the pipeline. ``rerank dvc-yaml --tune`` writes it from the same params; it is written on request
only, because ``dvc status`` lists every stage of the project, and a study that was never meant to run would keep
it from ever being clean (``rerank dvc-yaml --check`` checks it once it exists). The stage runs the
study in one process (``rerank tune --in-process``), depends on the prepared training and dev data, the tune code and
the params sections a trial reads, and keeps the study database as a persistent output, so an interrupted
``dvc repro tune/dvc.yaml`` resumes the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.dvc_stages import has_key, suite_data

TUNE_DVC_FILE = "tune/dvc.yaml"
HEADER = (
    "# Generated from params.yaml by `rerank dvc-yaml`, beside dvc.yaml. Not part of `dvc repro`: a study trains for\n"
    "# hours. Run it with `dvc repro tune/dvc.yaml`; it resumes where it stopped.\n"
)
CODE = [
    "tasks/tune.py",
    "tasks/tune_trial.py",
    "tasks/tune_space.py",
    "tasks/tune_study.py",
    "tasks/tune_data.py",
    "tasks/tune_pruning.py",
    "tasks/tune_result.py",
    "tasks/dev_eval.py",
    "tasks/train.py",
    "rerank_lib/training",
    "rerank_lib/losses",
    "rerank_lib/evaluation",
]
PARAMS = ["tune", "dev", "train", "prepare.datasets"]


def params_entries(params_file: str, params_data: dict, profile: str | None, profile_data: dict) -> list[Any]:
    """The sections the study reads, from each file that sets them."""

    entries: list[Any] = [{params_file: [key for key in PARAMS if has_key(params_data, key)]}]
    overridden = [key for key in PARAMS if has_key(profile_data, key)]
    if profile is not None and overridden:
        entries.append({profile: overridden})
    return entries


def tune_pipeline(
    cfg: Any, root: Path, params_file: str, params_data: dict, profile: str | None, profile_data: dict
) -> dict[str, Any] | None:
    """The content of tune/dvc.yaml, or None when the params have no tune section."""
    if cfg.tune is None:
        return None
    options = ("" if params_file == "params.yaml" else f" --params {params_file}") + (
        f" --profile {profile}" if profile else ""
    )
    data = [f"data/prepared/{name}" for name in cfg.train.datasets]
    data += suite_data(cfg.dev.suite, cfg) if cfg.dev is not None else []
    study = f"artifacts/tune/{cfg.tune.study}"
    outs: list[Any] = [] if cfg.tune.storage else [{f"{study}.db": {"persist": True, "cache": False}}]
    outs += [{f"{study}/{name}": {"cache": False}} for name in ("best.yaml", "best.json")]
    stage = {
        "wdir": "..",
        "cmd": f"python -m rerank_app.cli{options} tune --in-process",
        "deps": [*dict.fromkeys(data), *(path for path in CODE if (Path(root) / path).exists())],
        "params": params_entries(params_file, params_data, profile, profile_data),
        "outs": outs,
    }
    return {"stages": {"tune": stage}}


def render_tune(pipeline: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(pipeline, sort_keys=False, width=120)
