"""Scheduled retraining: serve the retrain flow on the cron schedule from params.yaml (`rerank serve`).

This keeps a long-running process that Prefect triggers; for a team, deploy the same flow to a work pool
instead (see infra/prefect/prefect.yaml). The cron runs are created by a Prefect server's scheduler, so serving
needs a configured server (``PREFECT_API_URL``): in Prefect's ephemeral mode nothing would ever be scheduled.
`rerank serve` starts a local server when none is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.schedules import Cron

from flows.retrain import retrain
from rerank_lib.errors import RerankError
from tasks.config import PipelineConfig, load_params

DEPLOYMENT_NAME = "scheduled-retrain"


class NoSchedulerError(RerankError):
    """No Prefect server is configured, so no scheduler would ever create the scheduled runs."""


def require_prefect_server() -> str:
    """The configured Prefect API URL; refuses Prefect's ephemeral mode, which has no scheduler."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise NoSchedulerError(
            "No Prefect server is configured (PREFECT_API_URL is unset), and Prefect's ephemeral mode has no "
            "scheduler: the cron runs would never be created. Run `rerank serve`, which starts a local server, or "
            "start one (`prefect server start`) and set PREFECT_API_URL=http://127.0.0.1:4200/api."
        )
    return url


def schedule_for(cfg: PipelineConfig) -> Any:
    """The Prefect schedule object for the params' cron expression and timezone."""
    return Cron(cfg.schedule.cron, timezone=cfg.schedule.timezone)


def serve(root: str = ".", params_path: str = "params.yaml", profile: str | None = None) -> None:
    """Serve ``retrain`` with the configured schedule until interrupted (refused at once without a server)."""
    cfg = load_params(Path(root) / params_path, profile=profile)
    require_prefect_server()
    retrain.serve(
        name=DEPLOYMENT_NAME,
        schedules=[schedule_for(cfg)],
        global_limit=1,  # runs share the project root: one at a time, a run due meanwhile waits (as in prefect.yaml)
        parameters={"root": str(Path(root).resolve()), "params_path": params_path, "profile": profile},
    )


if __name__ == "__main__":
    serve()
