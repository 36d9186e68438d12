"""`rerank serve-model`: the registered champion behind MLflow's own scoring server (`mlflow models serve`).

A thin wrapper, for three reasons: it resolves the champion alias to a version once, so the log names what is
served; it points MLflow at the project's registry (params.yaml's tracking URI); and it puts this interpreter's
bin folder first on PATH, because `mlflow models serve` starts `uvicorn` by name and exits with code 127 when the
virtualenv is not activated. The server is MLflow's: `POST /invocations` takes `dataframe_split`,
`dataframe_records` (or `inputs`) rows of `query` and `passage` and answers `{"predictions": [scores]}`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from rerank_app.champion import ServedVersion, resolve_served_version
from tasks.config import PipelineConfig
from tasks.mlflow_model import INFERENCE_OPTIONS

logger = logging.getLogger(__name__)

SERVING_MODEL_CONFIG = "SERVING_MODEL_CONFIG"  # read by MLflow's scoring server: the pyfunc's model_config


def mlflow_serve_command(served: ServedVersion, host: str, port: int, workers: int) -> list[str]:
    """`mlflow models serve` for the version, in this interpreter's environment (no conda, no virtualenv built)."""
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", served.uri, "--env-manager", "local"]
    return command + ["--host", host, "--port", str(port), "--workers", str(workers)]


def mlflow_serve_env(
    served: ServedVersion, options: dict[str, Any], base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment: this interpreter's bin first on PATH, the project's registry, and any backend override."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_TRACKING_URI"] = served.tracking_uri
    env["MLFLOW_REGISTRY_URI"] = served.tracking_uri
    overrides = {key: value for key, value in options.items() if value != INFERENCE_OPTIONS[key]}
    if options.get("num_threads"):  # torch's process-wide count: a fused model's bi-encoder runs with it too
        env["OMP_NUM_THREADS"] = str(options["num_threads"])
    if overrides:
        env[SERVING_MODEL_CONFIG] = json.dumps(overrides)
    else:
        env.pop(SERVING_MODEL_CONFIG, None)
    return env


def serve_with_mlflow(served: ServedVersion, host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Replace this process by `mlflow models serve` (signals and the exit code are then MLflow's own)."""
    command = mlflow_serve_command(served, host, port, workers)
    logger.info("Serving %s with MLflow's scoring server: POST http://%s:%d/invocations", served.describe(), host, port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, mlflow_serve_env(served, options))


def serve_registered_model(
    cfg: PipelineConfig,
    root: Path,
    api: str,
    host: str,
    port: int,
    version: str | None,
    options: dict[str, Any],
    workers: int,
    batching: dict[str, int],
) -> None:
    """Serve the champion (or ``version``) with MLflow's scoring server (``api="mlflow"``) or the /rerank API.

    ``workers``: MLflow's server processes, or the batches /rerank scores at once.
    """
    served = resolve_served_version(cfg, root, version)
    if api == "rerank":
        from rerank_app.rerank_api import BatchSettings, serve_rerank_api

        serve_rerank_api(served, host, port, options, BatchSettings(**batching, workers=workers))
    else:
        serve_with_mlflow(served, host, port, workers, options)
