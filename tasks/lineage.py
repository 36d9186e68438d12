"""Lineage facts recorded with every run and push: which code produced the model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any


def git_commit(root: Path) -> str:
    """The checked-out commit of ``root`` (``unknown`` outside git); ``-dirty`` when tracked files changed."""
    # GIT_OPTIONAL_LOCKS=0: `git status` must not refresh (write) the index while others use the checkout.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    options: dict[str, Any] = {"cwd": root, "capture_output": True, "text": True, "check": True, "timeout": 30}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], env=env, **options).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], env=env, **options)
        status = status.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if status else sha
