"""How the flow launches training and how `rerank serve` schedules it."""

from __future__ import annotations

import sys
from pathlib import Path

from flows.retrain import training_command
from flows.serve import schedule_for
from tasks.config import LaunchConfig, load_params

ROOT = Path(__file__).resolve().parents[2]


def test_training_command_for_each_launcher() -> None:
    params = Path("/p/params.yaml")
    plain = training_command(LaunchConfig(), ROOT, params)
    assert plain[:3] == [sys.executable, "-m", "tasks.cli"] and plain[-2:] == ["stage", "train"]
    torchrun = training_command(LaunchConfig(kind="torchrun", num_processes=4), ROOT, params)
    assert torchrun[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=4"]
    accelerate = training_command(
        LaunchConfig(kind="accelerate", num_processes=2, accelerate_config="infra/accelerate/x.yaml"), ROOT, params
    )
    assert "--num_processes=2" in accelerate and f"--config_file={ROOT / 'infra/accelerate/x.yaml'}" in accelerate
    assert accelerate[-2:] == ["stage", "train"]


def test_cli_stage_names_match_the_stages() -> None:
    from tasks.cli import STAGE_ORDER
    from tasks.stages import STAGE_ORDER as STAGES_ORDER
    from tasks.stages import STAGES

    assert STAGE_ORDER == STAGES_ORDER == tuple(STAGES)


def test_schedule_comes_from_params() -> None:
    cfg = load_params(ROOT / "params.yaml", overrides={"schedule": {"cron": "15 2 * * *", "timezone": "Europe/Paris"}})
    schedule = schedule_for(cfg)
    assert schedule.cron == "15 2 * * *" and schedule.timezone == "Europe/Paris"
