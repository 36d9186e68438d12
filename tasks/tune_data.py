"""The prepared data a trial trains on: the prepare stage's, except the catalog entries the trial changes.

A trial that changes how a training dataset is built (``prepare.datasets.<name>.mining.num_negatives``, a teacher's
weight, ...) gets that dataset built again with its values, once per distinct entry (cached under the study's folder
by a hash of the entry, so trials with the same values share it). Every other dataset is the prepare stage's
folder, linked in. Held-out parts are cut by the same split rule, so dev queries stay out whatever the trial builds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from filelock import FileLock

from rerank_lib.atomic import build_directory_atomic
from tasks.catalog import MANIFEST_FILE, build_dataset, write_prepared

logger = logging.getLogger(__name__)


def entry_hash(entry: Any) -> str:
    return hashlib.sha256(json.dumps(entry.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]


def changed_entries(trial_cfg: Any, base_cfg: Any) -> dict[str, Any]:
    """The training datasets whose catalog entry the trial changes: ``{name: entry}``."""
    return {
        name: trial_cfg.prepare.datasets[name]
        for name in trial_cfg.train.datasets
        if trial_cfg.prepare.datasets[name] != base_cfg.prepare.datasets.get(name)
    }


def trial_prepared(trial_cfg: Any, base_cfg: Any, prepared: Path, study_dir: Path, root: Path) -> Path:
    """The folder to read the trial's training data from (``prepared`` itself when the trial changes none)."""
    changed = changed_entries(trial_cfg, base_cfg)
    if not changed:
        return Path(prepared)
    built = {name: build_entry(name, entry, study_dir / "datasets", root) for name, entry in changed.items()}
    key = hashlib.sha256(json.dumps(sorted((n, p.name) for n, p in built.items())).encode()).hexdigest()[:12]
    target = study_dir / "prepared" / key

    def link(staging: Path) -> None:
        for name in trial_cfg.train.datasets:
            os.symlink((built.get(name) or Path(prepared) / name).resolve(), staging / name, target_is_directory=True)

    with FileLock(str(study_dir / "prepared.lock")):
        if not target.is_dir():
            build_directory_atomic(target, link)
    return target


def build_entry(name: str, entry: Any, folder: Path, root: Path) -> Path:
    """Build one catalog entry as a trial sets it, unless an earlier trial built the same entry."""
    out = Path(folder) / f"{name}-{entry_hash(entry)}"
    Path(folder).mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / MANIFEST_FILE).is_file():
            logger.info("Building %s as this trial sets it into %s", name, out)
            write_prepared(build_dataset(name, entry, root), out)
    return out
