"""Training precision against dev quality: the default recipe trained in fp32 and under bf16 autocast over several
seeds, each judged on the dev suite only (issue 31: ``train.precision: auto`` becomes the default only if bf16's dev
metrics stay within one seed's spread of fp32's).

For every (precision, seed): ``rerank stage train`` with ``train.precision`` and ``train.seed`` set, then ``rerank
stage package``, whose ``artifacts/dev/package.json`` holds the dev suite's metrics of the cross-encoder alone (share
0) and of the package it would ship. No test split is scored. Each finished run is kept in
``<work-dir>/runs/<precision>-<seed>.json``, so an interrupted benchmark resumes where it stopped (a training run
itself resumes from its checkpoints). ``--import fp32:42=PROJECT`` takes a run another project already trained (e.g.
the run-time benchmark's cold run) after checking that its training config and data are exactly the ones this
benchmark would train.

"One seed's spread" is the sample standard deviation over the fp32 seeds; the verdict holds for a metric when the
bf16 mean lies within it of the fp32 mean.

Run: ``.venv/bin/python benchmarks/precision_dev.py`` (3 seeds x 2 precisions: about 3 hours on 2 CPU cores);
``--help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from speed import machine
from tune_study import profile_path, project_copy, rerank_cli, run

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PRECISIONS = ("fp32", "bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rerank-precision-dev"), help="reused to resume")
    parser.add_argument("--output", type=Path, default=RESULTS / "precision_dev", help="results prefix (.json, .md)")
    parser.add_argument("--profile", default=None, help="a profile over params.yaml (quick: a smoke run)")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="PRECISION:SEED=PROJECT",
        help="take this run from a project that trained it (checked against this benchmark's config and data)",
    )
    parser.add_argument("--summary-only", action="store_true", help="write the results of the runs kept so far")
    return parser.parse_args(argv)


def project(work: Path) -> Path:
    """The benchmark's project root: params.yaml copied, the raw data linked, prepared once."""
    return project_copy(work / "project")


def cli(root: Path, profile: str | None, precision: str, seed: int) -> list[str]:
    return [*rerank_cli(root, profile), "--set", f"train.precision={precision}", "--set", f"train.seed={seed}"]


def expected_run_config(root: Path, profile: str | None, precision: str, seed: int) -> dict[str, Any]:
    """The run config (train section and data hashes) that ``stage train`` records for this precision and seed."""
    from tasks.config import load_params, parse_set_overrides
    from tasks.io import file_md5

    overrides = parse_set_overrides([f"train.precision={precision}", f"train.seed={seed}"])
    train = load_params(root / "params.yaml", profile_path(profile), overrides).train
    prepared = root / "data" / "prepared"
    hashes = {name: file_md5(prepared / name / f"{spec.split}.parquet") for name, spec in train.datasets.items()}
    return {"train": train.model_dump(mode="json"), "data_md5": hashes}


def run_record(project_root: Path, precision: str, seed: int, source: str) -> dict[str, Any]:
    """What one run measured: dev metrics of the cross-encoder alone and of the package, training time."""
    summary = json.loads((project_root / "artifacts" / "trained" / "training_summary.json").read_text())
    package = json.loads((project_root / "artifacts" / "dev" / "package.json").read_text())
    alone = package["shares"]["0.0"]
    share = package.get("share")
    shipped = next((v for k, v in package["shares"].items() if share is not None and float(k) == share), alone)
    return {
        "precision": precision,
        "seed": seed,
        "precision_used": summary["precision_used"],
        "training_seconds": summary["training_seconds"],
        "global_step": summary["global_step"],
        "source": source,
        "cross_encoder": {"objective": alone["objective"], **alone["metrics"]},
        "package": {"share": share, "objective": shipped["objective"], **shipped["metrics"]},
        "baselines": package["baselines"],
    }


def imported(spec: str, root: Path, profile: str | None) -> tuple[str, int, dict[str, Any]]:
    """A ``PRECISION:SEED=PROJECT`` run, refused unless its recorded config and data equal this benchmark's."""
    key, _, folder = spec.partition("=")
    precision, _, seed_text = key.partition(":")
    if precision not in PRECISIONS or not seed_text.isdigit() or not folder:
        raise SystemExit(f"--import {spec!r}: expected PRECISION:SEED=PROJECT, e.g. fp32:42=/tmp/project")
    seed, other = int(seed_text), Path(folder)
    summary = json.loads((other / "artifacts" / "trained" / "training_summary.json").read_text())
    expected = expected_run_config(root, profile, precision, seed)
    if summary.get("run_config") != expected:
        raise SystemExit(
            f"--import {spec!r}: {other}/artifacts/trained was trained with another config or data than this "
            f"benchmark's {precision} seed {seed} run (training_summary.json run_config differs)"
        )
    return precision, seed, run_record(other, precision, seed, source=f"imported from {other}")


def train_and_package(root: Path, work: Path, profile: str | None, precision: str, seed: int) -> dict[str, Any]:
    """Train one (precision, seed) in the project and choose its package on dev; its record."""
    command = cli(root, profile, precision, seed)
    log = work / f"{precision}-{seed}.log"
    train_wall = run([*command, "stage", "train"], log)
    package_wall = run([*command, "stage", "package"], log)
    record = run_record(root, precision, seed, source="trained here")
    return {**record, "train_wall_seconds": round(train_wall, 1), "package_wall_seconds": round(package_wall, 1)}


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scorer and dev metric: mean and std per precision, and whether bf16's mean is within fp32's std."""
    by_precision = {p: [r for r in runs if r["precision"] == p] for p in PRECISIONS}
    table: dict[str, Any] = {}
    for scorer in ("cross_encoder", "package"):
        names = [m for m in (runs[0][scorer] if runs else {}) if m == "objective" or m.endswith("ndcg@10")]
        for metric in names:
            row: dict[str, Any] = {}
            for precision, kept in by_precision.items():
                if kept:
                    mean, std = spread([r[scorer][metric] for r in kept])
                    row[precision] = {"mean": mean, "std": std, "n": len(kept)}
            if {"fp32", "bf16"} <= row.keys() and row["fp32"]["n"] > 1:
                gap = row["bf16"]["mean"] - row["fp32"]["mean"]
                row["bf16_minus_fp32"] = gap
                row["within_one_std"] = abs(gap) <= row["fp32"]["std"]
            table[f"{scorer}/{metric}"] = row
    seconds = {p: statistics.fmean(r["training_seconds"] for r in kept) for p, kept in by_precision.items() if kept}
    return {"table": table, "training_seconds": seconds}


def markdown(report: dict[str, Any]) -> str:
    runs, result = report["runs"], report["comparison"]
    done = ", ".join(f"{r['precision']} seed {r['seed']}" for r in runs) or "none"
    lines = [
        f"Measured {report['date']} by `{report['command']}` on {report['machine']['cpu']} "
        f"({report['machine']['logical_cpus']} logical CPUs); dev suite only (params.yaml `dev`). Runs kept: {done}.",
        "",
        "| scorer / dev metric | fp32 mean ± std | bf16 mean ± std | bf16 - fp32 | within one fp32 std |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, row in result["table"].items():
        cells = []
        for precision in PRECISIONS:
            stat = row.get(precision)
            cells.append("-" if not stat else f"{stat['mean']:.4f} ± {stat['std']:.4f} (n={stat['n']})")
        gap = f"{row['bf16_minus_fp32']:+.4f}" if "bf16_minus_fp32" in row else "-"
        verdict = {True: "yes", False: "no"}.get(row.get("within_one_std"), "-")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {gap} | {verdict} |")
    seconds = result["training_seconds"]
    lines += [
        "",
        "Wall seconds of training (mean): " + ", ".join(f"{p} {s:.0f}" for p, s in seconds.items()) + ". Not a "
        "speed measurement: a run that shared the machine with other jobs, or was paused, took longer.",
    ]
    lines += ["", "| precision | seed | used | training s | dev objective (cross-encoder) | package share | source |"]
    lines += ["|---|---:|---|---:|---:|---:|---|"]
    for r in runs:
        lines.append(
            f"| {r['precision']} | {r['seed']} | {r['precision_used']} | {r['training_seconds']:.0f} | "
            f"{r['cross_encoder']['objective']:.4f} | {r['package']['share']} | {r['source']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work_dir.resolve()
    (work / "runs").mkdir(parents=True, exist_ok=True)
    root = project(work)
    if not args.summary_only:
        run([*cli(root, args.profile, "fp32", args.seeds[0]), "stage", "prepare"], work / "prepare.log")
        for spec in args.imports:
            precision, seed, record = imported(spec, root, args.profile)
            (work / "runs" / f"{precision}-{seed}.json").write_text(json.dumps(record, indent=2))
        for seed in args.seeds:
            for precision in args.precisions:
                kept = work / "runs" / f"{precision}-{seed}.json"
                if kept.exists():
                    continue
                print(f"training {precision} seed {seed} (log: {work / f'{precision}-{seed}.log'})", flush=True)
                record = train_and_package(root, work, args.profile, precision, seed)
                if precision == "bf16" and record["precision_used"] != "bf16":
                    raise SystemExit("this machine has no native bf16: the bf16 run trained in fp32")
                kept.write_text(json.dumps(record, indent=2))
                shutil.rmtree(root / "artifacts" / "checkpoints", ignore_errors=True)
    runs = [json.loads(p.read_text()) for p in sorted((work / "runs").glob("*.json"))]
    runs.sort(key=lambda r: (r["seed"], PRECISIONS.index(r["precision"])))
    report = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/precision_dev.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "runs": runs,
        "comparison": compare(runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
