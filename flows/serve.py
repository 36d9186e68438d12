"""Scheduled retraining: serve the retrain flow on the cron schedule from params.yaml (`rerank serve`).

This keeps a long-running process that Prefect triggers; for a team, deploy the same flow to a work pool
instead (see infra/prefect/prefect.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.schedules import Cron

from flows.retrain import retrain
from tasks.config import PipelineConfig, load_params

DEPLOYMENT_NAME = "scheduled-retrain"


def schedule_for(cfg: PipelineConfig) -> Any:
    """The Prefect schedule object for the params' cron expression and timezone."""
    return Cron(cfg.schedule.cron, timezone=cfg.schedule.timezone)


def serve(root: str = ".", params_path: str = "params.yaml", profile: str | None = None) -> None:
    """Serve ``retrain`` with the configured schedule until interrupted."""
    cfg = load_params(Path(root) / params_path, profile=profile)
    retrain.serve(
        name=DEPLOYMENT_NAME,
        schedules=[schedule_for(cfg)],
        parameters={"root": str(Path(root).resolve()), "params_path": params_path, "profile": profile},
    )


if __name__ == "__main__":
    serve()
