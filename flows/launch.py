"""How the flow launches training: a local subprocess (plain Python, ``torchrun`` or ``accelerate launch``) or a
Kubeflow PyTorchJob, with the output shown live and a timeout that is enforced.

Training runs outside the flow's process so that the task timeout can kill it and so that the same task can start
several processes for data parallelism.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from tasks.config import LaunchConfig, PipelineConfig
from tasks.layout import Layout
from tasks.pytorchjob import TrainingProcessError, run_pytorchjob
from tasks.tracking import RUN_ID_ENV

__all__ = ["TrainingProcessError", "launch_training", "run_streaming", "training_command"]


def training_command(launch: LaunchConfig, root: Path, params_file: Path) -> list[str]:
    """The command that runs the train stage under the configured launcher."""
    stage = ["-m", "rerank_app.cli", "--root", str(root), "--params", str(params_file), "stage", "train"]
    if launch.kind == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={launch.num_processes}", *stage]
    if launch.kind == "accelerate":
        command = [sys.executable, "-m", "accelerate.commands.launch", f"--num_processes={launch.num_processes}"]
        if launch.accelerate_config:
            command.append(f"--config_file={root / launch.accelerate_config}")
        return [*command, *stage]
    return [sys.executable, *stage]


def run_streaming(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``command`` showing its output live (progress bars included); returns the exit code and the output tail."""
    tail: collections.deque[bytes] = collections.deque(maxlen=64)
    deadline = time.monotonic() + timeout
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        for chunk in iter(lambda: process.stdout.read1(4096), b""):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            tail.append(chunk)
            if time.monotonic() > deadline:
                process.kill()
                raise TrainingProcessError(f"Training exceeded launch.timeout_seconds={timeout:.0f}; it was killed.")
        returncode = process.wait()
    return returncode, b"".join(tail).decode("utf-8", errors="replace")[-6000:]


def launch_training(
    cfg: PipelineConfig, layout: Layout, run_id: str, params_file: Path, logger: logging.Logger
) -> None:
    """Train under ``cfg.launch``: a PyTorchJob writes artifacts/trained on the shared workspace volume, a local
    launch in a subprocess that reports to the pipeline's MLflow run."""
    if cfg.launch.kind == "pytorchjob":
        run_pytorchjob(cfg.launch, layout.root, run_id, params_file, logger)
        return
    command = training_command(cfg.launch, layout.root, params_file)
    logger.info("Launching training: %s", " ".join(command))
    env = {**os.environ, RUN_ID_ENV: run_id}
    returncode, tail = run_streaming(command, layout.root, env, cfg.launch.timeout_seconds)
    if returncode != 0:
        raise TrainingProcessError(f"Training exited with code {returncode}:\n{tail}")
