"""Where the train stage resumes: the last *complete* checkpoint of the same run config.

A process killed while the trainer writes ``checkpoint-N`` leaves a folder without (or with a truncated)
``trainer_state.json``. Resuming from it fails in transformers, and as checkpoints persist between `dvc repro`
runs, every later run would fail the same way; the stage must fall back to the previous complete checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.train import RUN_CONFIG_FILE, _resume_point, last_complete_checkpoint

RUN_CONFIG = {"train": {"max_steps": 30, "save_steps": 5}, "data_md5": {"wikiqa-train": "abc"}}


def write_checkpoint(folder: Path, step: int, state: str | None = "complete") -> Path:
    """A checkpoint folder as the trainer writes it: weights, optimizer, then trainer_state.json last."""
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    (checkpoint / "optimizer.pt").write_bytes(b"optimizer")
    if state == "complete":
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    elif state == "truncated":
        (checkpoint / "trainer_state.json").write_text('{"global_step": ')
    return checkpoint


def test_last_complete_checkpoint_skips_folders_killed_mid_save(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 5)
    write_checkpoint(tmp_path, 10)
    write_checkpoint(tmp_path, 15, state=None)  # killed before trainer_state.json was written
    write_checkpoint(tmp_path, 20, state="truncated")  # killed while it was written
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")


def test_last_complete_checkpoint_orders_by_step_not_name(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 5)
    write_checkpoint(tmp_path, 40)
    write_checkpoint(tmp_path, 100)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-100")


def test_last_complete_checkpoint_is_none_without_a_complete_one(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 5, state=None)
    assert last_complete_checkpoint(tmp_path) is None
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_resume_point_of_the_same_run_is_its_last_complete_checkpoint(tmp_path: Path) -> None:
    (tmp_path / RUN_CONFIG_FILE).write_text(json.dumps(RUN_CONFIG))
    write_checkpoint(tmp_path, 5)
    write_checkpoint(tmp_path, 10, state=None)
    assert _resume_point(tmp_path, RUN_CONFIG) == str(tmp_path / "checkpoint-5")
    assert (tmp_path / "checkpoint-5").is_dir()


def test_resume_point_of_another_config_starts_clean(tmp_path: Path) -> None:
    (tmp_path / RUN_CONFIG_FILE).write_text(json.dumps(RUN_CONFIG))
    write_checkpoint(tmp_path, 5)
    other = {**RUN_CONFIG, "data_md5": {"wikiqa-train": "def"}}
    assert _resume_point(tmp_path, other) is None
    assert not (tmp_path / "checkpoint-5").exists()
    assert json.loads((tmp_path / RUN_CONFIG_FILE).read_text()) == other
