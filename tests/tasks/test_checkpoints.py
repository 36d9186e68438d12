"""Checkpoints per training config: a run resumes from its own last complete checkpoint and deletes no other's.

A process killed while the trainer writes ``checkpoint-N`` leaves a folder without (or with a truncated)
``trainer_state.json``; resuming from it fails in transformers, so the store falls back to the previous complete
checkpoint. A run of another config (a smoke run, a failed run) must never cost a long run its checkpoints.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rerank_lib.errors import ConfigError
from tasks.checkpoints import (
    LAST_USED_FILE,
    MLFLOW_RUN_FILE,
    RUN_CONFIG_FILE,
    CheckpointStore,
    config_id,
    last_complete_checkpoint,
)
from tasks.tracking import TrackingUnavailableError
from tests.tasks.train_testkit import DATASET, train_toy_model

RUN_CONFIG = {"train": {"max_steps": 30, "save_steps": 5}, "data_md5": {"wikiqa-train": "abc"}}
OTHER_CONFIG = {**RUN_CONFIG, "data_md5": {"wikiqa-train": "def"}}


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


def test_config_id_is_stable_and_tells_configs_apart() -> None:
    assert config_id(RUN_CONFIG) == config_id(json.loads(json.dumps(RUN_CONFIG)))
    assert config_id(RUN_CONFIG) != config_id(OTHER_CONFIG)


def test_a_config_resumes_from_its_own_last_complete_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, RUN_CONFIG)
    assert store.resume_point() is None
    folder = store.open("run-1")
    write_checkpoint(folder, 5)
    write_checkpoint(folder, 10, state=None)
    again = CheckpointStore(tmp_path, RUN_CONFIG)
    assert again.resume_point() == str(folder / "checkpoint-5")
    assert again.stored_run_id() == "run-1"


def test_another_config_starts_clean_and_leaves_the_first_one_alone(tmp_path: Path) -> None:
    first = CheckpointStore(tmp_path, RUN_CONFIG)
    write_checkpoint(first.open("run-1"), 5)
    other = CheckpointStore(tmp_path, OTHER_CONFIG)
    assert other.resume_point() is None
    other.open("run-2")
    assert other.folder != first.folder
    assert (first.folder / "checkpoint-5" / "trainer_state.json").is_file()
    assert json.loads((first.folder / RUN_CONFIG_FILE).read_text()) == RUN_CONFIG
    assert (first.folder / MLFLOW_RUN_FILE).read_text() == "run-1"


def test_pruning_keeps_the_most_recently_used_configs_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores = [CheckpointStore(tmp_path, {**RUN_CONFIG, "seed": seed}) for seed in range(4)]
    for store in stores:
        write_checkpoint(store.open("run"), 5)
    stores[0].touch()  # used again after the others: the oldest is now stores[1]
    with caplog.at_level(logging.WARNING, logger="tasks.checkpoints"):
        removed = stores[3].prune_others(keep=3)
    assert removed == [stores[1].folder]
    assert not stores[1].folder.exists()
    assert all(store.folder.is_dir() for store in (stores[0], stores[2], stores[3]))
    assert "Removing the checkpoints of another training config" in caplog.text
    assert str(stores[1].folder) in caplog.text


def test_the_config_used_last_counts_as_newest_even_against_a_clock_that_ran_ahead(tmp_path: Path) -> None:
    stores = [CheckpointStore(tmp_path, {**RUN_CONFIG, "seed": seed}) for seed in range(4)]
    for store in stores:
        store.open("run")
        (store.folder / LAST_USED_FILE).write_text("1733500000.123\n")  # the older seconds format, all equal
    (stores[2].folder / LAST_USED_FILE).write_text("4102444800000000000\n")  # marked by a clock in 2100
    stores[0].touch()
    stores[3].touch()
    assert stores[3].prune_others(keep=2) == [stores[2].folder, stores[1].folder]
    assert [s.folder.is_dir() for s in stores] == [True, False, False, True]


def test_checkpoints_of_the_flat_layout_move_into_their_config_folder(tmp_path: Path) -> None:
    (tmp_path / RUN_CONFIG_FILE).write_text(json.dumps(RUN_CONFIG))
    (tmp_path / MLFLOW_RUN_FILE).write_text("old-run")
    write_checkpoint(tmp_path, 5)
    store = CheckpointStore(tmp_path, RUN_CONFIG)
    assert store.resume_point() == str(tmp_path / config_id(RUN_CONFIG) / "checkpoint-5")
    assert store.stored_run_id() == "old-run"
    assert not (tmp_path / "checkpoint-5").exists()


def _a_long_runs_checkpoints(root: Path, base: Path) -> tuple[Path, dict[str, bytes]]:
    """A finished toy run, its trained model removed (as a fresh `dvc repro` would): its checkpoints on disk."""
    train_toy_model(root, base)
    (root / "artifacts" / "trained" / "training_summary.json").unlink()
    (folder,) = (root / "artifacts" / "checkpoints").iterdir()
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert any(name.startswith("checkpoint-") for name in files)
    return folder, files


def _unchanged(folder: Path, files: dict[str, bytes]) -> bool:
    return all((folder / name).is_file() and (folder / name).read_bytes() == data for name, data in files.items())


def test_failed_runs_of_other_configs_delete_no_checkpoint(tiny_bert_dir: Path, tmp_path: Path) -> None:
    folder, files = _a_long_runs_checkpoints(tmp_path, tiny_bert_dir)
    with pytest.raises(ConfigError, match="unknown loss"):  # a wrong loss name
        train_toy_model(tmp_path, tiny_bert_dir, datasets={DATASET: {"loss": "NoSuchLoss"}})
    with pytest.raises(ConfigError, match="train.max_length"):  # a length the base model cannot take
        train_toy_model(tmp_path, tiny_bert_dir, max_length=100_000)
    with pytest.raises(TrackingUnavailableError):  # another config and an unreachable tracking server
        train_toy_model(tmp_path, tiny_bert_dir, max_steps=2, tracking_uri="http://127.0.0.1:1")
    assert _unchanged(folder, files)


def test_a_finished_smoke_run_keeps_the_long_runs_checkpoints(tiny_bert_dir: Path, tmp_path: Path) -> None:
    folder, files = _a_long_runs_checkpoints(tmp_path, tiny_bert_dir)
    train_toy_model(tmp_path, tiny_bert_dir, max_steps=2)
    assert _unchanged(folder, files)
    assert len(list((tmp_path / "artifacts" / "checkpoints").iterdir())) == 2
