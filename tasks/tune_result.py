"""The result of a study: ``best.yaml`` (the best trial's settings as params) and ``best.json`` (what and why).

``best.yaml`` holds only params keys, nested as in params.yaml, so it applies as ``rerank --set-from
artifacts/tune/best.yaml run`` (or as a profile); its comment lines say which study and trial it came from.
``best.json`` holds the best trial's dev metrics and guards, the baselines, and one row per trial. Each study
writes its own pair under ``artifacts/tune/<study>/``; the latest study's is copied to ``artifacts/tune/`` (a study
with no complete trial has no best.yaml, and leaves none there).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import optuna
import yaml

from tasks.io import write_json_atomic, write_text_atomic
from tasks.tune_space import nested
from tasks.tune_study import best_trial, finished, params_trial, retried

BEST_YAML = "best.yaml"
BEST_JSON = "best.json"


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: what it tried, its dev numbers, and the seconds it took (a study's cost is in them)."""
    again = retried(study)
    return [
        {
            "number": trial.number,
            "state": "retried" if trial.number in again else trial.state.name.lower(),
            "objective": trial.value,
            "feasible": trial.user_attrs.get("feasible"),
            "values": trial.params,
            "retry_of": trial.system_attrs.get("failed_trial"),
            "resumed_from": trial.user_attrs.get("resumed_from"),
            "package_share": trial.user_attrs.get("package_share"),
            "metrics": trial.user_attrs.get("metrics"),
            "seconds": seconds_taken(trial),
        }
        for trial in study.get_trials(deepcopy=False)
    ]


def seconds_taken(trial: optuna.trial.FrozenTrial) -> float | None:
    """Wall seconds from the trial's start to its end (None while it runs or waits)."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def params_trial_row(study: optuna.Study) -> dict[str, Any] | None:
    """The trial that trained the params as they are (``tune.enqueue_params``): today's recipe on the same dev."""
    trial = params_trial(study)
    if trial is None:
        return None
    return {"number": trial.number, "state": trial.state.name.lower(), "objective": trial.value}


def params_trial_comment(row: dict[str, Any] | None, best: int) -> str:
    if row is None or row["objective"] is None:
        return ""
    if row["number"] == best:
        return "# The params as they were won: applying this file changes nothing.\n"
    return f"# The params as they were (trial {row['number']}): dev objective {row['objective']:.4f}.\n"


def write_result(study: optuna.Study, tune: Any, baselines: dict[str, Any], tune_dir: Path) -> list[Path]:
    """Write best.yaml and best.json for the study (nothing when no trial is complete); returns the files."""
    best = best_trial(study)
    study_dir = Path(tune_dir) / tune.study
    summary = {
        "study": tune.study,
        "trials_finished": finished(study),
        "trials_planned": tune.trials,
        "scorer": tune.scorer,
        "baselines": baselines,
        "trials": trial_rows(study),
        "params_trial": params_trial_row(study),
        "best": None,
    }
    written = [study_dir / BEST_JSON]
    if best is not None:
        summary["best"] = {
            "number": best.number,
            "objective": best.value,
            "feasible": best.user_attrs.get("feasible"),
            "guards": best.user_attrs.get("guards"),
            "metrics": best.user_attrs.get("metrics"),
            "settings": best.user_attrs.get("settings"),
            "package_share": best.user_attrs.get("package_share"),
        }
        held = "its guards held" if best.user_attrs.get("feasible") else "NO trial held every guard: the best objective"
        header = (
            f"# rerank tune, study {tune.study!r}: trial {best.number} of {finished(study)} finished, dev objective "
            f"{best.value:.4f} ({tune.scorer.replace('_', '-')}; {held}).\n"
            f"{params_trial_comment(summary['params_trial'], best.number)}"
            f"# Apply: `rerank --set-from <this file> run` (or use it as a profile); every trial: {BEST_JSON}.\n"
        )
        body = yaml.safe_dump(nested(best.user_attrs.get("settings") or {}), sort_keys=False)
        write_text_atomic(study_dir / BEST_YAML, header + body)
        written.insert(0, study_dir / BEST_YAML)
    write_json_atomic(study_dir / BEST_JSON, summary)
    if best is None:  # an earlier study's best.yaml at the top would pass for this one's (its own copy stays)
        (Path(tune_dir) / BEST_YAML).unlink(missing_ok=True)
    for path in written:  # the latest study's result at the top, where `--set-from artifacts/tune/best.yaml` finds it
        shutil.copy2(path, Path(tune_dir) / path.name)
    return [Path(tune_dir) / path.name for path in written]
