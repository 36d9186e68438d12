"""The export lock keeps model folders clean and gathers its lock files in one folder of the temp directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rerank_lib.backends._common import export_lock, export_lock_path


def test_lock_files_live_in_one_temp_subfolder_not_in_the_model_folder(tmp_path: Path) -> None:
    model_folder = tmp_path / "model"
    with export_lock(model_folder):
        assert export_lock_path(model_folder).exists()
    lock = export_lock_path(model_folder)
    assert lock.parent == Path(tempfile.gettempdir()) / f"rerank_lib-export-locks-{os.getuid()}"
    assert list(model_folder.iterdir()) == []
    assert export_lock_path(tmp_path / "other") != lock
    assert export_lock_path(tmp_path / "model" / ".." / "model") == lock
