"""Training checkpoints kept per training config, so that no run can delete another config's resume point.

``artifacts/checkpoints/<config id>/`` holds one config's ``run_config.json``, its ``mlflow_run_id`` and the
trainer's ``checkpoint-N`` folders. A run resumes from its own config's folder and never touches the others while
it validates, connects to MLflow or trains: a quick smoke run, a typo in a loss name or an unreachable tracking
server cannot cost a long run its checkpoints. Only after a run has finished training are the folders of other
configs pruned, keeping the most recently used ones (``train.checkpoint_configs_kept``), each removal logged at
WARNING. Checkpoints written by the older flat layout (``checkpoint-N`` directly in ``artifacts/checkpoints``) are
moved into their config's folder, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME

from tasks.io import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "run_config.json"
MLFLOW_RUN_FILE = "mlflow_run_id"
LAST_USED_FILE = "last_used"
CHECKPOINT_NAME = re.compile(r"checkpoint-\d+")
CONFIG_ID = re.compile(r"[0-9a-f]{12}")


def config_id(run_config: dict) -> str:
    """A short, stable id of a training config (its canonical JSON), used as its folder name."""
    canonical = json.dumps(run_config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The ``checkpoint-N`` folder with the highest N whose ``trainer_state.json`` (written last) parses, else None.

    A process killed while saving leaves a newer folder without that file, or with it truncated; transformers
    cannot resume from such a folder, so it is skipped (the trainer overwrites it when it reaches that step).
    """
    checkpoints = Path(checkpoints)
    if not checkpoints.is_dir():
        return None
    candidates = [p for p in checkpoints.iterdir() if p.is_dir() and CHECKPOINT_NAME.fullmatch(p.name)]
    for candidate in sorted(candidates, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        try:
            json.loads((candidate / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("Skipping incomplete checkpoint %s (no readable %s).", candidate, TRAINER_STATE_NAME)
            continue
        return str(candidate)
    return None


def _read_run_config(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RUN_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class CheckpointStore:
    """The checkpoint folder of one training config under ``root``, and the clean-up of the others."""

    def __init__(self, root: Path, run_config: dict) -> None:
        self.root = Path(root)
        self.run_config = run_config
        self.folder = self.root / config_id(run_config)

    def resume_point(self) -> str | None:
        """The last complete checkpoint of an interrupted run of this same config, else None. Reads only."""
        self._adopt_flat_layout()
        if _read_run_config(self.folder) != self.run_config:
            return None
        return last_complete_checkpoint(self.folder)

    def stored_run_id(self) -> str | None:
        """The MLflow run an interrupted run of this config was logging to."""
        path = self.folder / MLFLOW_RUN_FILE
        return path.read_text(encoding="utf-8").strip() or None if path.is_file() else None

    def open(self, run_id: str) -> Path:
        """Create this config's folder (nothing else is touched) and record the config and its MLflow run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if _read_run_config(self.folder) != self.run_config:
            write_json_atomic(self.folder / RUN_CONFIG_FILE, self.run_config)
        if run_id:
            write_text_atomic(self.folder / MLFLOW_RUN_FILE, run_id)
        self.touch()
        return self.folder

    def touch(self) -> None:
        """Mark this config as the most recently used one under ``root``.

        The mark is a nanosecond clock reading raised above every other config's mark, so two configs used within
        the clock's resolution still have a definite order and pruning never picks between equals.
        """
        others = [_last_used(p) for p in self._config_folders() if p != self.folder]
        mark = max([time.time_ns(), *(used + 1 for used in others)])
        write_text_atomic(self.folder / LAST_USED_FILE, f"{mark}\n")

    def _config_folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and CONFIG_ID.fullmatch(p.name)]

    def prune_others(self, keep: int) -> list[Path]:
        """Remove the folders of other configs beyond the ``keep`` most recently used (this one counts); returns them.

        Called only after this config's run has finished training.
        """
        others = [p for p in self._config_folders() if p != self.folder]
        others.sort(key=_last_used, reverse=True)
        removed = others[max(keep - 1, 0) :]
        for folder in removed:
            logger.warning(
                "Removing the checkpoints of another training config, %s (train.checkpoint_configs_kept=%d keeps "
                "the %d most recently used configs' checkpoints).",
                folder,
                keep,
                keep,
            )
            shutil.rmtree(folder, ignore_errors=True)
        return removed

    def _adopt_flat_layout(self) -> None:
        """Move checkpoints of the flat layout (``root/checkpoint-N`` + ``root/run_config.json``) into their folder."""
        legacy = _read_run_config(self.root)
        flat = [p for p in self.root.iterdir() if CHECKPOINT_NAME.fullmatch(p.name)] if self.root.is_dir() else []
        if legacy is None and not flat:
            return
        target = self.root / (config_id(legacy) if legacy is not None else "flat-layout-" + str(os.getpid()))
        target.mkdir(parents=True, exist_ok=True)
        for name in [RUN_CONFIG_FILE, MLFLOW_RUN_FILE, *(p.name for p in flat)]:
            if (self.root / name).exists() and not (target / name).exists():
                os.replace(self.root / name, target / name)
        logger.warning("Moved checkpoints of the flat layout in %s into %s.", self.root, target)


def _last_used(folder: Path) -> int:
    """When a config was last used, in nanoseconds; older marks in seconds (``1733500000.123``) are converted."""
    try:
        text = (folder / LAST_USED_FILE).read_text(encoding="utf-8").strip()
        return int(text) if text.isdigit() else int(float(text) * 1e9)
    except (OSError, ValueError):
        return folder.stat().st_mtime_ns
