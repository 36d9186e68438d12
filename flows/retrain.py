"""The retraining flow: prepare → train → evaluate → card → register, as Prefect tasks.

Run it with ``rerank run`` (or ``python -m flows.retrain``); Prefect runs in its ephemeral local mode unless
``PREFECT_API_URL`` points at a server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from tasks.config import load_params
from tasks.layout import Layout
from tasks.stages import STAGES


@task(name="prepare")
def prepare_task(cfg: Any, layout: Layout) -> Any:
    return STAGES["prepare"](cfg, layout)


@task(name="train")
def train_task(cfg: Any, layout: Layout) -> Any:
    return STAGES["train"](cfg, layout)


@task(name="evaluate")
def evaluate_task(cfg: Any, layout: Layout) -> Any:
    return STAGES["evaluate"](cfg, layout)


@task(name="card")
def card_task(cfg: Any, layout: Layout) -> Any:
    return STAGES["card"](cfg, layout)


@task(name="register", retries=2, retry_delay_seconds=5)
def register_task(cfg: Any, layout: Layout) -> Any:
    return STAGES["register"](cfg, layout)


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
    prepare_task(cfg, layout)
    train_task(cfg, layout)
    evaluation = evaluate_task(cfg, layout)
    card_path = card_task(cfg, layout)
    registered = register_task(cfg, layout)
    outputs = {
        "model": str(layout.model),
        "metrics": str(layout.metrics),
        "card": str(card_path),
        "mlflow_tracking_uri": registered.tracking_uri,
        "mlflow_run_id": registered.run_id,
        "registered_model": f"{registered.model_name} version {registered.model_version}",
    }
    for name, value in evaluation.metrics.items():
        logger.info("%s = %.4f", name, value)
    return outputs


if __name__ == "__main__":
    from tasks.cli import main

    main(["run"])
