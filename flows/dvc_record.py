"""One record of what ran: the Prefect flow asks DVC which stages changed, runs only those, and records each in
dvc.lock when it ends.

So after `rerank run` (or a scheduled run) `dvc status` is clean and `dvc repro` has nothing to do, `dvc push` stores
the prepared data and the model in the team remote, and the next run skips every stage whose data, code and params
are unchanged, whichever entry point ran it before. dvc.yaml is written from the run's params and profile first
(:mod:`tasks.dvc_stages`), so the record always describes the params that ran.

DVC is driven through its command line (``python -m dvc``) rather than its Python API: each call is a fresh process
holding DVC's repository lock only while it runs, as `dvc repro` would.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_lib.atomic import write_text_atomic
from tasks.config import PipelineConfig
from tasks.dvc_stages import DVC_FILE, dvc_pipeline, render
from tasks.layout import STAGE_ORDER
from tasks.param_sources import profile_path, read_yaml

logger = logging.getLogger(__name__)

DVC_TIMEOUT = 1800


class DvcRecordError(RuntimeError):
    """A DVC command failed: the flow stops rather than leave dvc.lock out of step with what ran."""


@dataclass(frozen=True)
class DvcRecord:
    """The project's DVC pipeline, as the flow's record of what ran."""

    root: Path

    @classmethod
    def open(
        cls, root: Path, cfg: PipelineConfig, params_file: str, profile: str | None, overrides: dict[str, Any] | None
    ) -> DvcRecord | None:
        """The record for this run, with dvc.yaml written for its params; None (and why, in the log) without one.

        A run with per-run overrides (``--set``) cannot be recorded: dvc.yaml names params files, and `dvc repro`
        could not repeat it.
        """
        root = Path(root)
        if not (root / ".dvc").is_dir() or not _under_version_control(root):
            logger.info("No DVC repository in %s: every stage runs and nothing is recorded in dvc.lock.", root)
            return None
        if overrides:
            logger.warning("--set overrides are not recorded in dvc.lock (put them in a profile): every stage runs.")
            return None
        profile_rel, profile_data = None, {}
        if profile:
            found = profile_path(profile, root).resolve()
            profile_rel, profile_data = os.path.relpath(found, root), read_yaml(found, "Profile")
        pipeline = dvc_pipeline(cfg, root, params_file, read_yaml(root / params_file), profile_rel, profile_data)
        text = render(pipeline)
        target = root / DVC_FILE
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            write_text_atomic(target, text)
            logger.info("Wrote %s for these params%s.", target, f" and {profile_rel}" if profile_rel else "")
        return cls(root)

    def _dvc(self, *args: str) -> str:
        command = [sys.executable, "-m", "dvc", *args]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=DVC_TIMEOUT)
        if done.returncode != 0:
            raise DvcRecordError(f"`dvc {' '.join(args)}` failed in {self.root}:\n{done.stderr[-4000:]}")
        return done.stdout

    def pending(self) -> dict[str, str]:
        """Every pipeline stage that must run, with why: empty when dvc.lock records the project as it is."""
        status = json.loads(self._dvc("status", "--json", *STAGE_ORDER) or "{}")
        return {stage: describe_changes(entries) for stage, entries in status.items() if stage in STAGE_ORDER}

    def changes(self, stage: str) -> str | None:
        """Why ``stage`` must run (its changed deps, params or outs, in DVC's words), or None when it is up to date."""
        status = json.loads(self._dvc("status", "--json", stage) or "{}")
        if not status:
            return None
        return describe_changes(status.get(stage, status))

    def commit(self, stage: str) -> None:
        """Record ``stage``'s deps, params and outs (outs into the DVC cache) in dvc.lock, as `dvc repro` would."""
        self._dvc("commit", "--force", stage)
        logger.info("Recorded stage %s in dvc.lock.", stage)


def describe_changes(entries: Any) -> str:
    """DVC's status entries for one stage as one line: ``changed deps: params.yaml (train.epochs), data/x``."""
    parts = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, str):
            parts.append(entry)
            continue
        for kind, paths in entry.items():
            names = [
                f"{path} ({', '.join(change)})" if isinstance(change, dict) else path for path, change in paths.items()
            ]
            parts.append(f"{kind}: {', '.join(names)}")
    return "; ".join(parts) or "changed"


def _under_version_control(root: Path) -> bool:
    """DVC needs a git work tree around the project, unless it was set up with ``dvc init --no-scm``."""
    if any((folder / ".git").exists() for folder in (root, *root.parents)):
        return True
    config = root / ".dvc" / "config"
    return config.is_file() and "no_scm = true" in config.read_text(encoding="utf-8").lower()
