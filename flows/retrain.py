"""The retraining flow: prepare → train → package → evaluate → card → register (with promotion), as Prefect tasks.

Run it with ``rerank run``. Prefect runs in its ephemeral local mode unless
``PREFECT_API_URL`` points at a server. Training runs in a subprocess launched by its task, so the task timeout
is enforceable and the same task can launch ``torchrun`` / ``accelerate launch`` with several processes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, task
from prefect.filesystems import LocalFileSystem

from tasks.config import LaunchConfig, PipelineConfig, load_params
from tasks.io import file_md5, write_text_atomic
from tasks.layout import Layout
from tasks.prepare import source_paths
from tasks.pytorchjob import TrainingProcessError, run_pytorchjob
from tasks.stages import STAGES
from tasks.tracking import RUN_ID_ENV, start_run

RESULTS_DIR = ".prefect-results"
RESULTS_BLOCK = "rerank-task-results"
EFFECTIVE_PARAMS = "artifacts/flow_params.yaml"


def prepare_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache `prepare` on its params and raw input hashes; a lost output is handled by ``prepared_outputs_exist``."""
    cfg: PipelineConfig = parameters["cfg"]
    layout: Layout = parameters["layout"]
    digest = hashlib.sha256(json.dumps(cfg.prepare.model_dump(mode="json"), sort_keys=True).encode())
    for name, entry in cfg.prepare.datasets.items():
        if name in cfg.prepare.skip:
            continue
        for source in source_paths(entry, layout.root):
            files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
            for path in files:
                digest.update(f"{path}:{file_md5(path) if path.is_file() else 'missing'};".encode())
    return f"prepare-{digest.hexdigest()}"


def prepared_outputs_exist(cfg: PipelineConfig, layout: Layout) -> bool:
    """Every dataset to build has its manifest; otherwise the prepare cache must be refreshed."""
    built = [name for name in cfg.prepare.datasets if name not in cfg.prepare.skip]
    return all((layout.prepared / name / "manifest.json").is_file() for name in built)


@task(name="open-mlflow-run", retries=2, retry_delay_seconds=5, timeout_seconds=120)
def open_run_task(cfg: PipelineConfig, layout: Layout) -> str:
    """Create the pipeline's MLflow run first: an unreachable tracking server fails the flow before training."""
    return start_run(cfg.tracking.tracking_uri, cfg.tracking.experiment, layout.root)


@task(name="prepare", cache_key_fn=prepare_cache_key, persist_result=True, timeout_seconds=3600)
def prepare_task(cfg: PipelineConfig, layout: Layout) -> Any:
    return STAGES["prepare"](cfg, layout)


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


@task(name="train", cache_policy=None, persist_result=False)
def train_task(cfg: PipelineConfig, layout: Layout, run_id: str, params_file: Path) -> None:
    """Launch training as a subprocess or a PyTorchJob; never cached (it resumes from its own checkpoints instead)."""
    logger = get_run_logger()
    if cfg.launch.kind == "pytorchjob":  # the pods write artifacts/trained on the workspace volume shared with us
        run_pytorchjob(cfg.launch, layout.root, run_id, params_file, logger)
        return
    command = training_command(cfg.launch, layout.root, params_file)
    logger.info("Launching training: %s", " ".join(command))
    env = {**os.environ, RUN_ID_ENV: run_id}
    returncode, tail = run_streaming(command, layout.root, env, cfg.launch.timeout_seconds)
    if returncode != 0:
        raise TrainingProcessError(f"Training exited with code {returncode}:\n{tail}")


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


@task(name="package", timeout_seconds=3600)
def package_task(cfg: PipelineConfig, layout: Layout) -> Any:
    """Choose on the dev suite what ships: the cross-encoder alone or a package with the first stage."""
    return STAGES["package"](cfg, layout)


@task(name="evaluate", timeout_seconds=3600)
def evaluate_task(cfg: PipelineConfig, layout: Layout) -> Any:
    return STAGES["evaluate"](cfg, layout)


@task(name="card", timeout_seconds=600)
def card_task(cfg: PipelineConfig, layout: Layout) -> Any:
    return STAGES["card"](cfg, layout)


@task(name="register", retries=3, retry_delay_seconds=[5, 20, 60], timeout_seconds=1800)
def register_task(cfg: PipelineConfig, layout: Layout) -> Any:
    return STAGES["register"](cfg, layout)


@task(name="push", retries=2, retry_delay_seconds=30, timeout_seconds=3600)
def push_task(cfg: PipelineConfig, layout: Layout) -> Any:
    """Hub push (a dry run without a token); its own retries cover transient HTTP failures."""
    return STAGES["push"](cfg, layout)


@flow(name="retrain-reranker", log_prints=True)
def retrain(
    root: str = ".",
    params_path: str = "params.yaml",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Retrain the reranker with params.yaml (plus a profile or per-run overrides); returns where outputs are."""
    layout = Layout(Path(root).resolve())
    cfg = load_params(layout.root / params_path, profile=profile, overrides=overrides)
    logger = get_run_logger()
    params_file = layout.root / EFFECTIVE_PARAMS
    # What was given (params + profile + overrides), not every default spelled out: the training subprocess
    # validates this file again, and some sections reject explicit values that their defaults would fill in.
    effective = cfg.model_dump(mode="json", exclude_unset=True)
    write_text_atomic(params_file, yaml.safe_dump(effective, sort_keys=False))
    run_id = open_run_task(cfg, layout)
    # Task results (the prepare cache) persist under the project, not in the user's home.
    storage = LocalFileSystem(basepath=str(layout.root / RESULTS_DIR))
    storage.save(RESULTS_BLOCK, overwrite=True)
    refresh = not prepared_outputs_exist(cfg, layout)
    prepare_task.with_options(result_storage=storage, refresh_cache=refresh)(cfg, layout)
    train_task.with_options(timeout_seconds=cfg.launch.timeout_seconds + 60)(cfg, layout, run_id, params_file)
    package_task(cfg, layout)
    evaluation = evaluate_task(cfg, layout)
    card_path = card_task(cfg, layout)
    registered = register_task(cfg, layout)
    pushed = push_task(cfg, layout)
    outputs = {
        "model": str(layout.model),
        "metrics": str(layout.metrics),
        "card": str(card_path),
        "mlflow_tracking_uri": registered.tracking_uri,
        "mlflow_run_id": registered.run_id,
        "registered_model": f"{registered.model_name} version {registered.model_version}",
        "promotion": f"{registered.decision} ({registered.reason})",
        "hub_push": pushed.url if pushed.pushed else f"skipped: {pushed.skipped_reason}",
    }
    for name, value in evaluation.metrics.items():
        logger.info("%s = %.4f", name, value)
    return outputs
