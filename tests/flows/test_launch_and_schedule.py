"""How the flow launches training and how `rerank serve` schedules it."""

from __future__ import annotations

import sys
from pathlib import Path

from flows.launch import training_command
from flows.serve import schedule_for
from tasks.config import LaunchConfig, load_params

ROOT = Path(__file__).resolve().parents[2]


def test_training_command_for_each_launcher() -> None:
    params = Path("/p/params.yaml")
    plain = training_command(LaunchConfig(), ROOT, params)
    assert plain[:3] == [sys.executable, "-m", "rerank_app.cli"] and plain[-2:] == ["stage", "train"]
    torchrun = training_command(LaunchConfig(kind="torchrun", num_processes=4), ROOT, params)
    assert torchrun[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=4"]
    accelerate = training_command(
        LaunchConfig(kind="accelerate", num_processes=2, accelerate_config="infra/accelerate/x.yaml"), ROOT, params
    )
    assert "--num_processes=2" in accelerate and f"--config_file={ROOT / 'infra/accelerate/x.yaml'}" in accelerate
    assert accelerate[-2:] == ["stage", "train"]


def test_cli_stage_names_match_the_stages() -> None:
    from rerank_app.cli import STAGE_ORDER
    from tasks.stages import STAGE_ORDER as STAGES_ORDER
    from tasks.stages import STAGES

    assert STAGE_ORDER == STAGES_ORDER == tuple(STAGES)


def test_schedule_comes_from_params() -> None:
    cfg = load_params(ROOT / "params.yaml", overrides={"schedule": {"cron": "15 2 * * *", "timezone": "Europe/Paris"}})
    schedule = schedule_for(cfg)
    assert schedule.cron == "15 2 * * *" and schedule.timezone == "Europe/Paris"


def test_training_output_streams_and_failures_keep_the_tail(capfd) -> None:  # noqa: ANN001
    import pytest

    from flows.launch import TrainingProcessError, run_streaming

    code, tail = run_streaming([sys.executable, "-c", "print('step 1'); print('step 2')"], ROOT, {}, 60)
    assert code == 0 and "step 2" in tail
    assert "step 1" in capfd.readouterr().out  # shown live, not swallowed
    code, tail = run_streaming([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], ROOT, {}, 60)
    assert code == 3 and "boom" in tail
    with pytest.raises(TrainingProcessError, match="timeout"):
        run_streaming(
            [sys.executable, "-c", "import time\nfor _ in range(50): print('.', flush=True); time.sleep(0.1)"],
            ROOT,
            {},
            0.2,
        )
