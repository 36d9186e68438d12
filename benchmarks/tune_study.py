"""The recipe chosen by the pipeline itself: a tune study of the default params, then its test numbers over 3 seeds
beside the hand-found recipe's (issue 29's measurement).

1. ``prepare``, then ``rerank tune --in-process`` on params.yaml's study (``tune`` section: the space, the dev suite
   objective and its guards). ``--budget-hours`` counts the hours its trials have taken, over every run of the study:
   no trial starts after them (the running one finishes). The study resumes if the command is run again, on this
   machine from its work folder, on another from ``--journal`` (benchmarks/study_journal.py), which every run saves
   the study to when it ends or is stopped (Ctrl-C, ``kill PID``): a study longer than a machine's stay goes on
   where it stopped, losing only the trial that was running. ``--run-minutes`` fits a run into the time a machine is
   held: no trial starts that is not expected to end in it (by the longest trial so far), so a stop loses nothing.
2. ``benchmarks/quality.py --set-from <the study's best.yaml>`` (3 seeds: train, package, evaluate).
3. ``benchmarks/quality.py`` on params.yaml as it is, the hand-found recipe, through the same pipeline (its dev
   splits held out, its package chosen on dev), unless ``--skip-hand-found``. When the study's best trial is
   params.yaml as it is (``tune.enqueue_params``), the two recipes are one: it is measured once, in step 3 only.

Nothing is chosen on a test split: the study judges on the dev suite, the package stage chooses on it too; the test
sets are only evaluated. Writes ``<output>.json`` (the study's trials, the best trial, both recipes' tables) and
``<output>.md``; the two quality runs write their own ``<output>-tuned.*`` and ``<output>-hand-found.*``.

Run: ``.venv/bin/python benchmarks/tune_study.py --budget-hours 8`` (the study's budget, then about 40 minutes per
seed and recipe on 2 CPU cores: about 12 hours in all); ``--help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from speed import machine
from study_journal import journal_storage, restore, save, spent_seconds

from tasks.config import load_params
from tasks.layout import Layout
from tasks.tune_result import BEST_YAML, params_trial_row, seconds_taken, trial_rows
from tasks.tune_study import finished, storage_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget-hours",
        type=float,
        default=8.0,
        help="hours of trials, summed over every run of the study (it resumes): no trial starts after them",
    )
    parser.add_argument("--trials", type=int, default=None, help="tune.trials (default: params.yaml's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rerank-tune-study"), help="reused to resume")
    parser.add_argument(
        "--journal",
        type=Path,
        default=RESULTS / "tune-study-journal.jsonl",
        help="the study saved in optuna's journal format: restored from it on a new machine, saved to it on exit",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "tune-study", help="results prefix (.json, .md)")
    parser.add_argument("--skip-hand-found", action="store_true", help="measure only the recipe the study picked")
    parser.add_argument(
        "--profile", default=None, help="a profile over params.yaml for every step (quick: a smoke run)"
    )
    parser.add_argument(
        "--run-minutes",
        type=float,
        default=None,
        help="this run's share of a study spread over machines: no trial starts unless it is expected to end within "
        "this many minutes (the longest trial so far); the study is then saved and the command exits, to go on later",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="print the study's trials so far (from the work folder, else the journal) and exit; trains nothing",
    )
    return parser.parse_args(argv)


def run(command: list[str], log: Path) -> float:
    """Run a command with its output appended to ``log``; fail naming the log. Returns wall seconds.

    The command runs in a process group of its own: stopping the benchmark stops it and whatever it started (the
    quality runs' stages), not only the direct child.
    """
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait()
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed (exit {returncode}); see {log}")
    return time.perf_counter() - started


def profile_path(profile: str | None) -> str | None:
    """A profile name's file under the project's profiles/ (None: params.yaml alone)."""
    return str(ROOT / "profiles" / f"{profile}.yaml") if profile else None


def project_copy(root: Path) -> Path:
    """A project root for a benchmark: this project's params.yaml copied, its raw data linked."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    if not (root / "data" / "raw").exists():
        (root / "data" / "raw").symlink_to(ROOT / "data" / "raw", target_is_directory=True)
    return root


def rerank_cli(root: Path, profile: str | None) -> list[str]:
    """`rerank --root ROOT [--profile FILE]` run with this interpreter."""
    command = [sys.executable, "-m", "rerank_app.cli", "--root", str(root)]
    return command + (["--profile", profile_path(profile)] if profile else [])


def study(args: argparse.Namespace, work: Path) -> tuple[Path, float, bool]:
    """Run (or resume) the study in ``work/study``, restored from and saved to ``--journal``: its best.yaml, the
    hours its trials have taken in all (the budget counts those, across machines), and whether it is over (budget
    spent or trials run) rather than paused at ``--run-minutes``."""
    root = project_copy(work / "study")
    cli = rerank_cli(root, args.profile)
    log = work / "study.log"
    run([*cli, "stage", "prepare"], log)
    tune = load_params(root / "params.yaml", profile=profile_path(args.profile)).tune
    tune_dir = Layout(root).tune_dir
    tune_dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(tune, tune_dir)
    if restore(args.journal, url, tune.study):
        print(f"study {tune.study}: restored from {args.journal}", flush=True)
    spent, done = progress(url, tune.study)
    print(f"study {tune.study}: {done} trials finished in {spent / 3600:.2f} h (log: {log})", flush=True)
    planned = args.trials or tune.trials
    budget_left = args.budget_hours * 3600 - spent
    longest = longest_trial_seconds(optuna.load_study(study_name=tune.study, storage=url)) if done else 0.0
    window = trial_window(budget_left, args.run_minutes, longest)
    ends_study = window >= budget_left or done >= planned  # this run goes until the budget or the trials are spent
    if window < 1 and not ends_study:
        print(f"study {tune.study}: no trial is expected to end within --run-minutes; nothing started", flush=True)
        return tune_dir / BEST_YAML, spent / 3600, False
    settings = ["--set", f"tune.trials={planned}"]
    # No trial starts once the time is spent; the study then only writes its best.yaml.
    settings += ["--set", f"tune.timeout={window:.0f}"] if window >= 1 else ["--set", f"tune.trials={max(done, 1)}"]
    try:
        run([*cli, *settings, "tune", "--in-process"], log)
    finally:
        if tune.study in optuna.get_all_study_names(url):
            saved = save(url, tune.study, args.journal)
            print(f"study {tune.study}: {saved} trials saved to {args.journal}", flush=True)
    spent, done = progress(url, tune.study)
    return tune_dir / BEST_YAML, spent / 3600, ends_study or done >= planned or spent >= args.budget_hours * 3600


def trial_window(budget_left: float, run_minutes: float | None, longest_trial: float) -> float:
    """Seconds after which no trial starts (``tune.timeout``): the study budget left, and with ``--run-minutes`` this
    run's minutes less the longest trial so far, so that the last trial it starts is expected to end in time."""
    if run_minutes is None:
        return budget_left
    return min(budget_left, run_minutes * 60 - longest_trial)


def longest_trial_seconds(study: optuna.Study) -> float:
    """The longest complete trial's seconds (0 before any): what the next trial is allowed to take."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max((seconds_taken(trial) or 0.0 for trial in complete), default=0.0)


def progress(url: str, name: str) -> tuple[float, int]:
    """Seconds the study's trials have taken, and how many count as finished (0, 0 before it exists)."""
    if name not in optuna.get_all_study_names(url):
        return 0.0, 0
    study = optuna.load_study(study_name=name, storage=url)
    return spent_seconds(study), finished(study)


def show_progress(args: argparse.Namespace) -> str:
    """The trials so far as a table, read from the work folder's study if it has one, else from the journal."""
    tune = load_params(ROOT / "params.yaml", profile=profile_path(args.profile)).tune
    url = storage_url(tune, Layout(args.work_dir.resolve() / "study").tune_dir)
    exists = not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).is_file()  # don't create one
    if exists and tune.study in optuna.get_all_study_names(url):
        where, storage = url, url
    elif args.journal.is_file():
        where, storage = str(args.journal), journal_storage(args.journal)
    else:
        return f"no study {tune.study!r} yet: neither {url} nor {args.journal} holds one"
    study = optuna.load_study(study_name=tune.study, storage=storage)
    header = f"study {tune.study} ({where}): {finished(study)} trials finished in {spent_seconds(study) / 3600:.2f} h"
    return header + "\n\n" + trials_markdown(trial_rows(study), params_trial_row(study))


SHOWN_METRIC = "_ndcg@10"  # per dev set in the trials table; best.json has every metric


def trials_markdown(rows: list[dict[str, Any]], params_trial: dict[str, Any] | None) -> str:
    """Every trial: its state, dev objective, per-set dev NDCG@10, minutes, and the values it tried."""
    sets = sorted({name for row in rows for name in (row.get("metrics") or {}) if name.endswith(SHOWN_METRIC)})
    lines = [
        "| trial | state | dev objective | "
        + " | ".join(name.removesuffix(SHOWN_METRIC) for name in sets)
        + " | minutes | values |",
        "|---:|---|---:|" + "---:|" * len(sets) + "---:|---|",
    ]
    for row in rows:
        metrics = row.get("metrics") or {}
        is_params = params_trial is not None and params_trial["number"] == row["number"]
        minutes = "-" if row.get("seconds") is None else f"{row['seconds'] / 60:.0f}"
        cells = [
            f"{row['number']}{' (params.yaml)' if is_params else ''}",
            row["state"],
            number(row["objective"]),
            *(number(metrics.get(name)) for name in sets),
            minutes,
            short_values(row["values"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def short_values(values: dict[str, Any]) -> str:
    """``key=value`` with the params' common prefixes dropped and floats at 3 significant digits."""
    shown = []
    for key, value in values.items():
        name = key.removeprefix("prepare.datasets.").removeprefix("train.")
        shown.append(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(shown)


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def quality(args: argparse.Namespace, work: Path, name: str, extra: list[str]) -> dict[str, Any]:
    output = args.output.with_name(f"{args.output.name}-{name}")
    command = [sys.executable, "benchmarks/quality.py", "--seeds", *map(str, args.seeds), *extra]
    if args.profile:
        command += ["--profile", args.profile]
    run(
        [*command, "--work-dir", str(work / f"quality-{name}"), "--output", from_root(output)],
        work / f"quality-{name}.log",
    )
    return json.loads(output.with_suffix(".json").read_text())


def from_root(path: Path) -> str:
    """A path as the quality runs (started in the project root) read it and their results files print it: relative
    inside the project, so a results file names no machine's folders."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.progress:
        print(show_progress(args))
        return 0
    signal.signal(signal.SIGTERM, interrupt)  # `kill PID` stops the benchmark as Ctrl-C does: saved, resumable
    try:
        return measure(args, argv)
    except KeyboardInterrupt:
        saved = f"the study is saved in {args.journal}, measured seeds in their results files"
        print(f"stopped: {saved}; run the same command to go on", file=sys.stderr)
        return 130


def measure(args: argparse.Namespace, argv: list[str] | None) -> int:
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    best_yaml, hours, over = study(args, work)
    if not over:
        print(f"paused: {hours:.2f} of {args.budget_hours} hours of trials spent; run the same command to go on")
        return 0
    summary = json.loads(best_yaml.with_name("best.json").read_text())
    kept = args.output.with_name(f"{args.output.name}-best.yaml")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(best_yaml.read_text())
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/tune_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "study_hours": round(hours, 2),
        "study": summary,
        "best_yaml": best_yaml.read_text(),
        "picked_params": picked_params(summary),
    }
    for key, extra in recipes_to_measure(summary, kept, args.skip_hand_found).items():
        report[key] = quality(args, work, key.replace("_", "-"), extra)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def picked_params(summary: dict[str, Any]) -> bool:
    """Whether the study's best trial is params.yaml as it is: then the picked and the hand-found recipe are one,
    and three more seeds of it (about three hours on 2 cores) would measure nothing new."""
    best, params = summary.get("best") or {}, summary.get("params_trial") or {}
    return best.get("number") is not None and best.get("number") == params.get("number")


def recipes_to_measure(summary: dict[str, Any], best_yaml: Path, skip_hand_found: bool) -> dict[str, list[str]]:
    """The report's key of each recipe to measure and its ``quality.py`` arguments: the picked recipe, then the
    hand-found one; only the hand-found one when the study picked params.yaml as it is (one recipe, measured once)."""
    if picked_params(summary):
        return {"hand_found": []}
    recipes = {"tuned": ["--set-from", from_root(best_yaml)]}
    if not skip_hand_found:
        recipes["hand_found"] = []
    return recipes


def markdown(report: dict[str, Any]) -> str:
    """The study (trials, what it picked, on which dev numbers) and both recipes' test tables side by side."""
    study, best = report["study"], report["study"]["best"] or {}
    states: dict[str, int] = {}
    for trial in study["trials"]:
        states[trial["state"]] = states.get(trial["state"], 0) + 1
    lines = [
        f"Tune study `{study['study']}`, measured {report['date']} on {report['machine']['logical_cpus']} CPU cores "
        f"({report['machine']['cpu']}): {study['trials_finished']} trials, "
        f"{report['study_hours']:.1f} hours of trials "
        f"({', '.join(f'{count} {state}' for state, count in sorted(states.items()))}).",
        "",
        f"Best trial: {best.get('number')}, dev objective {best.get('objective', float('nan')):.4f} (guards "
        f"{'held' if best.get('feasible') else 'NOT all held'}); its settings (`best.yaml`):",
        "",
        params_trial_line(study.get("params_trial")),
        "",
        "```yaml",
        report["best_yaml"].strip(),
        "```",
        "",
        "Every trial (dev NDCG@10 per set, cross-encoder alone; minutes of wall time on this machine):",
        "",
        trials_markdown(study["trials"], study.get("params_trial")),
        "",
        "| dev metric (cross-encoder alone) | best trial | BM25 | bi-encoder |",
        "|---|---:|---:|---:|",
    ]
    for metric, value in (best.get("metrics") or {}).items():
        cells = [study["baselines"].get(which, {}).get(metric) for which in ("bm25", "bi_encoder")]
        shown = " | ".join("-" if cell is None else f"{cell:.4f}" for cell in cells)
        lines.append(f"| {metric} | {value:.4f} | {shown} |")
    titles = {"tuned": "The recipe the study picked", "hand_found": "The hand-found recipe (params.yaml)"}
    if report.get("picked_params"):
        titles["hand_found"] = "The recipe the study picked: params.yaml as it is, the hand-found recipe"
    for key, title in titles.items():
        if key in report:
            lines += ["", f"### {title}", "", quality_markdown(report[key])]
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def params_trial_line(row: dict[str, Any] | None) -> str:
    """The hand-found recipe (params.yaml as it is) as the study judged it, its first trial."""
    if row is None:
        return "The study did not train params.yaml as it is (tune.enqueue_params off, or outside the space)."
    objective = "-" if row["objective"] is None else f"{row['objective']:.4f}"
    return f"params.yaml as it is: trial {row['number']} ({row['state']}), dev objective {objective}."


def quality_markdown(result: dict[str, Any]) -> str:
    from quality import markdown as table  # benchmarks/ is on the path: the script runs from there

    return table(result).strip()


if __name__ == "__main__":
    raise SystemExit(main())
