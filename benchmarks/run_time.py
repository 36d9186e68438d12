"""Time to a promoted model: every step of `make run` from a fresh clone, cold and warm.

The project is cloned (its committed HEAD) into a work folder, with the team DVC remote pointed at this checkout's,
and then timed step by step:

* cold: creating the virtual environment and installing the project, `dvc pull` of the raw data, and `rerank run`
  with each stage's seconds as the flow reports them (prepare, train, evaluate, card, register, push);
* warm: `rerank run` again with nothing changed (every stage is as dvc.lock recorded it);
* retrain: `rerank run` after a training param changed (`train.seed` in a profile), so training and evaluation run
  again while prepared data, baseline scores and embeddings come from the first run.

It writes ``<output>.json`` and ``<output>.md`` with the CPU model and the command. Run, from the project root:
``.venv/bin/python benchmarks/run_time.py`` (the default recipe: well over an hour on 2 CPU cores), or
``--profile quick`` for the two-minute smoke profile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from speed import machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STAGES = ("prepare", "train", "package", "evaluate", "card", "register", "push")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=None, help="a profile of the project (default: params.yaml alone)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rerank-run-time"), help="where the clone goes")
    parser.add_argument("--output", type=Path, default=RESULTS / "run_time", help="results path, without suffix")
    parser.add_argument(
        "--skip-retrain", action="store_true", help="time the cold and warm runs only (saves one training run)"
    )
    return parser.parse_args(argv)


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Seconds a command took, and its standard output; a failure stops the benchmark with the output's tail."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed after {seconds:.0f} s:\n{(done.stdout + done.stderr)[-6000:]}")
    return seconds, done.stdout


def run_summary(stdout: str) -> dict[str, str]:
    """The ``Retraining finished:`` block `rerank run` prints: its indented ``name  value`` lines, up to the first
    line that is not one (logs may follow on the same stream)."""
    summary: dict[str, str] = {}
    if "Retraining finished:" not in stdout:
        return summary
    for line in stdout.split("Retraining finished:")[-1].splitlines()[1:]:
        if not line.startswith("  ") or len(line.split(None, 1)) != 2:
            break
        name, value = line.split(None, 1)
        summary[name] = value.strip()
    return summary


def fresh_clone(work: Path) -> Path:
    """A clone of this checkout's HEAD whose DVC remote is this checkout's team remote."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    clone = work / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    remote = subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    team = (ROOT / ".dvc" / remote[1]).resolve() if not Path(remote[1]).is_absolute() else Path(remote[1])
    (clone / ".dvc" / "config.local").write_text(f"['remote \"{remote[0]}\"']\n    url = {team}\n")
    return clone


def flow_run(clone: Path, profile: str | None) -> tuple[float, dict[str, Any]]:
    """`rerank run`: its wall time, and the stages it ran or skipped with their seconds."""
    command = [str(clone / ".venv" / "bin" / "rerank"), *(["--profile", profile] if profile else []), "run"]
    seconds, output = timed(command, clone, env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})
    lines = run_summary(output)
    stages = dict(item.split(": ", 1) for item in lines["stages"].split(", ")) if "stages" in lines else {}
    stage_seconds = json.loads(lines.get("stage_seconds", "{}"))
    return seconds, {"outcome": lines.get("outcome", ""), "stages": stages, "stage_seconds": stage_seconds}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    clone = fresh_clone(args.work_dir)
    steps: dict[str, Any] = {}
    steps["install"], _ = timed(["make", ".venv/.installed-stamp"], clone)
    steps["dvc pull"], _ = timed(["make", "data"], clone)
    steps["cold run"], steps["cold stages"] = flow_run(clone, args.profile)
    eval_dir = clone / "artifacts" / "eval"
    steps["cold metrics"] = json.loads((eval_dir / "metrics.json").read_text())  # what the cold run measured
    steps["cold shipped"] = json.loads((eval_dir / "report.json").read_text()).get("shipped")
    steps["warm run"], steps["warm stages"] = flow_run(clone, args.profile)
    if args.skip_retrain:
        return steps
    retrain = clone / "profiles" / "run-time-retrain.yaml"
    base = (clone / "profiles" / f"{args.profile}.yaml").read_text() if args.profile else ""
    retrain.write_text(base + ("\n" if base else "") + "train:\n  seed: 43\n" if "train:" not in base else base)
    if "train:" in base:  # the profile already has a train section: set the seed inside it
        retrain.write_text(base.replace("train:\n", "train:\n  seed: 43\n", 1))
    steps["retrain run"], steps["retrain stages"] = flow_run(clone, "profiles/run-time-retrain.yaml")
    return steps


def markdown(report: dict[str, Any]) -> str:
    steps = report["steps"]
    cold = steps["cold stages"]["stage_seconds"]
    retrain = steps.get("retrain stages", {}).get("stage_seconds")
    cold_total = steps["install"] + steps["dvc pull"] + steps["cold run"]
    header = "| step | cold (fresh clone) | warm (nothing changed) |" + (
        " retrain (train.seed changed) |" if retrain is not None else ""
    )
    rows = [
        f"Measured {report['date']} by `{report['command']}` on {report['machine']['cpu']} "
        f"({report['machine']['logical_cpus']} logical CPUs, no GPU); profile: {report['profile'] or 'params.yaml'}.",
        "",
        header,
        "|---|---:|---:|" + ("---:|" if retrain is not None else ""),
        f"| install (venv + project) | {steps['install']:.0f} s | - |" + (" - |" if retrain is not None else ""),
        f"| dvc pull (raw data) | {steps['dvc pull']:.0f} s | - |" + (" - |" if retrain is not None else ""),
    ]
    for stage in STAGES:
        warm = steps["warm stages"]["stage_seconds"].get(stage)
        row = f"| {stage} | {cold.get(stage, 0):.0f} s | {'skipped' if warm is None else f'{warm:.0f} s'} |"
        if retrain is not None:
            row += f" {retrain.get(stage, 0):.0f} s ({steps['retrain stages']['stages'].get(stage, '')}) |"
        rows.append(row)
    total = f"| **whole run** | **{cold_total / 60:.1f} min** | **{steps['warm run'] / 60:.1f} min** |"
    rows.append(total + (f" **{steps['retrain run'] / 60:.1f} min** |" if retrain is not None else ""))
    if cold.get("train"):
        rows += [
            "",
            f"Evaluation took {100 * cold.get('evaluate', 0) / cold['train']:.0f}% of training time on the cold run.",
        ]
    if retrain and retrain.get("train"):
        rows += [f"Evaluation on the retrain run took {100 * retrain.get('evaluate', 0) / retrain['train']:.0f}% "
                 "of its training time."]  # fmt: skip
    if "cold metrics" in steps:
        rows += ["", f"What the cold run shipped: {json.dumps(steps['cold shipped'])}.", ""]
        rows += ["| metric | shipped | cross-encoder alone | bm25 | bi-encoder |", "|---|---:|---:|---:|---:|"]
        numbers = steps["cold metrics"]
        alone = numbers.get("components", {}).get("cross_encoder", {})
        for key, value in numbers["metrics"].items():
            if "_base_" in key or not key.endswith("ndcg@10"):
                continue
            cells = [alone.get(key), *(numbers["baselines"].get(b, {}).get(key) for b in ("bm25", "bi_encoder"))]
            rows.append(
                f"| {key} | {value:.4f} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells) + " |"
            )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    steps = measure(args)
    report = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/run_time.py"
        + (f" --profile {args.profile}" if args.profile else "")
        + (" --skip-retrain" if args.skip_retrain else ""),
        "profile": args.profile,
        "machine": machine(),
        "steps": steps,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
