"""Quality of the default retraining recipe over several seeds, next to its two baselines (issue 7).

For each seed this runs the pipeline's own stages, as ``make run`` does, in a work folder outside the project:
``prepare`` once (shared by all seeds), then ``train``, ``package`` (what ships, chosen on the dev splits) and
``evaluate`` with ``--set train.seed=<seed>``. Each evaluation writes what ships, the cross-encoder alone and both
baselines (BM25 alone, and the zero-shot bi-encoder reranking the same candidates) for WikiQA test, SciFact dev and
TREC-DL19 into ``artifacts/eval/metrics.json``.

It writes ``<output>.json`` (every seed's numbers, training times, params, machine), ``<output>.md`` (mean ± std per
dataset and metric for BM25, the bi-encoder and ours, and the issue's targets, met or not) and ``<output>.png`` (a
bar chart). A seed whose evaluation is already in the work folder or in ``<output>.json`` (same params) is not run
again, so an interrupted benchmark continues where it stopped, on this machine or, from the results file, another.
``--profile NAME`` measures a variant (params.yaml + profiles/NAME.yaml) the same way, and ``--set-from FILE`` (e.g. a
tune study's best.yaml) applies a values file on top; give either its own ``--output`` so the default recipe's results
stay as they are.

Run: ``.venv/bin/python benchmarks/quality.py`` (about 40 minutes per seed on 2 CPU cores); see ``--help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from speed import machine

from tasks.config import raw_params

ROOT = Path(__file__).resolve().parent.parent

RESULTS = ROOT / "benchmarks" / "results"
# "cross_encoder": the trained cross-encoder scored alone (metrics.json "components"); "ours": what ships.
SYSTEMS = ("bm25", "bi_encoder", "cross_encoder", "ours")
SYSTEM_LABELS = {
    "bm25": "BM25",
    "bi_encoder": "bi-encoder (zero-shot)",
    "cross_encoder": "ours: cross-encoder alone",
    "ours": "ours (as shipped)",
}
DATASETS = {"wikiqa_test": "WikiQA test", "scifact_dev": "SciFact dev", "trec_dl19": "TREC-DL19"}
METRICS = ("map", "mrr@10", "ndcg@10")
# The bars (issue 29, which contains issue 7's): the cross-encoder alone above the zero-shot bi-encoder on every set
# (NDCG@10), and what ships above both baselines on every set and metric.
MUST = [(dataset, "ndcg@10", ("bi_encoder",), "cross_encoder") for dataset in DATASETS]
MUST += [(dataset, metric, ("bm25", "bi_encoder"), "ours") for dataset in DATASETS for metric in METRICS]
AIM = {("wikiqa_test", "mrr@10"): 0.80, ("wikiqa_test", "ndcg@10"): 0.84}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="training seeds (default 42 43 44)")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the recipe (default params.yaml)")
    parser.add_argument(
        "--profile", default=None, help="apply profiles/<name>.yaml on top of the recipe (e.g. passages: a variant)"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="params override, repeatable"
    )
    parser.add_argument(
        "--set-from", dest="set_from", type=Path, default=None, help="a values file over the recipe (e.g. best.yaml)"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=Path("/tmp/rerank-quality"), help="where runs live (reused to resume)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "quality", help="results prefix: writes .json, .md and .png"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild .md and .png from the existing .json; run nothing"
    )
    return parser.parse_args(argv)


def stage(root: Path, name: str, overrides: list[str], log: Path) -> float:
    """Run one pipeline stage as ``rerank stage`` does, its output appended to ``log``; returns wall seconds."""
    command = [sys.executable, "-m", "rerank_app.cli", "--root", str(root), "--params", str(root / "params.yaml")]
    for override in overrides:
        command += ["--set", override]
    command += ["stage", name]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        completed = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        raise SystemExit(f"stage {name} failed in {root} (exit {completed.returncode}); see {log}")
    return time.perf_counter() - started


def recipe_fingerprint(recipe: dict[str, Any], overrides: list[str]) -> str:
    """The parsed params and overrides, so an edited comment in params.yaml does not discard finished seeds."""
    text = json.dumps([recipe, overrides], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recipe_label(args: argparse.Namespace) -> str:
    """How the tables and the chart name the recipe: the default, or the default with a profile on top."""
    return f"Recipe params.yaml + profiles/{args.profile}.yaml" if args.profile else "Default recipe"


def reset_if_changed(root: Path, fingerprint: str, stale: list[str]) -> None:
    """Outputs of another recipe in ``root`` would be resumed or reused: remove them when the recipe changed."""
    marker = root / "recipe_fingerprint"
    if marker.is_file() and marker.read_text() == fingerprint:
        return
    for name in stale:
        path = root / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint)


def recipe_text(args: argparse.Namespace) -> str:
    """The recipe as the runs read it: params.yaml itself, or with the profile and the --set-from file merged in."""
    if args.profile is None and args.set_from is None:
        return args.params.read_text()
    values = {} if args.set_from is None else yaml.safe_load(args.set_from.read_text())
    return yaml.safe_dump(raw_params(args.params, args.profile, values), sort_keys=False)


def prepare_shared(work: Path, recipe: str, overrides: list[str], fingerprint: str) -> Path:
    """A work root with the recipe, the raw data linked in, and prepared data made once for all seeds."""
    shared = work / "shared"
    reset_if_changed(shared, fingerprint, ["data/prepared"])
    (shared / "data").mkdir(parents=True, exist_ok=True)
    (shared / "params.yaml").write_text(recipe)
    raw = shared / "data" / "raw"
    if not raw.exists():
        raw.symlink_to(ROOT / "data" / "raw", target_is_directory=True)
    if not (shared / "data" / "prepared").is_dir():
        print("prepare (once for all seeds)", flush=True)
        stage(shared, "prepare", overrides, work / "prepare.log")
    return shared


def seed_root(work: Path, shared: Path, seed: int) -> Path:
    """One root per seed sharing the raw and prepared data and the BM25 index cache."""
    root = work / f"seed-{seed}"
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy2(shared / "params.yaml", root / "params.yaml")
    for name in ("raw", "prepared"):
        if not (root / "data" / name).exists():
            (root / "data" / name).symlink_to(shared / "data" / name, target_is_directory=True)
    (shared / ".cache").mkdir(exist_ok=True)
    if not (root / ".cache").exists():
        (root / ".cache").symlink_to(shared / ".cache", target_is_directory=True)
    return root


def run_seed(work: Path, shared: Path, seed: int, overrides: list[str], fingerprint: str) -> dict[str, Any]:
    reset_if_changed(work / f"seed-{seed}", fingerprint, ["artifacts", "seed_result.json", "mlflow.db"])
    root = seed_root(work, shared, seed)
    done = root / "seed_result.json"
    if done.is_file():
        previous = json.loads(done.read_text())
        if previous.get("fingerprint") == fingerprint:
            print(f"seed {seed}: reusing {done}", flush=True)
            return previous
    seeded = [*overrides, f"train.seed={seed}", f"tracking.tracking_uri=sqlite:///{root / 'mlflow.db'}"]
    log = root / "run.log"
    print(f"seed {seed}: train (log: {log})", flush=True)
    train_seconds = stage(root, "train", seeded, log)
    print(f"seed {seed}: package", flush=True)
    stage(root, "package", seeded, log)
    print(f"seed {seed}: evaluate", flush=True)
    evaluate_seconds = stage(root, "evaluate", seeded, log)
    summary = json.loads((root / "artifacts" / "trained" / "training_summary.json").read_text())
    metrics_file = json.loads((root / "artifacts" / "eval" / "metrics.json").read_text())
    result = {
        "seed": seed,
        "fingerprint": fingerprint,
        "training_seconds": summary.get("training_seconds"),
        "train_stage_seconds": round(train_seconds, 1),
        "evaluate_stage_seconds": round(evaluate_seconds, 1),
        "steps": summary.get("global_step"),
        "resumed_from": summary.get("resumed_from"),  # its training_seconds then count from the resume
        "ours": metrics_file["metrics"],
        "bm25": metrics_file["baselines"]["bm25"],
        "bi_encoder": metrics_file["baselines"]["bi_encoder"],
        "cross_encoder": (metrics_file.get("components") or {}).get("cross_encoder", {}),
        "shipped": json.loads((root / "artifacts" / "eval" / "report.json").read_text()).get("shipped"),
    }
    done.write_text(json.dumps(result, indent=2))
    return result


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``table[dataset][metric][system] = {"mean", "std", "n"}`` over seeds (std 0 for one seed)."""
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for dataset in DATASETS:
        for metric in METRICS:
            key = f"{dataset}_{metric}"
            for system in SYSTEMS:
                values = [run[system][key] for run in runs if key in run.get(system, {})]
                if not values:
                    continue
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                cell = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
                table.setdefault(dataset, {}).setdefault(metric, {})[system] = cell
    return table


def check_targets(table: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for dataset, metric, rivals, system in MUST:
        cells = table.get(dataset, {}).get(metric, {})
        if system not in cells or not any(rival in cells for rival in rivals):
            continue
        best = max(cells[rival]["mean"] for rival in rivals if rival in cells)
        ours = cells[system]["mean"]
        checks.append(
            {
                "kind": "must",
                "system": system,
                "dataset": dataset,
                "metric": metric,
                "rivals": [rival for rival in rivals if rival in cells],
                "ours": ours,
                "best_baseline": best,
                "met": ours > best,
            }
        )
    for (dataset, metric), target in AIM.items():
        cell = table.get(dataset, {}).get(metric, {}).get("ours")
        if cell:
            checks.append(
                {"kind": "aim", "dataset": dataset, "metric": metric, "ours": cell["mean"], "target": target}
                | {"met": cell["mean"] >= target}
            )
    return checks


def present_systems(table: dict[str, Any]) -> list[str]:
    """The systems with numbers in the table, in SYSTEMS order (the cross-encoder alone only for fused models)."""
    found = {system for metrics in table.values() for cells in metrics.values() for system in cells}
    return [system for system in SYSTEMS if system in found]


def column_label(report: dict[str, Any], system: str) -> str:
    """A system's table header; ours names its recipe (the default or a profile)."""
    if system != "ours":
        return SYSTEM_LABELS[system]
    recipe = report.get("recipe", "Default recipe")
    return f"ours (as shipped, {'default recipe' if recipe == 'Default recipe' else recipe.removeprefix('Recipe ')})"


def shipped_sentence(runs: list[dict[str, Any]]) -> str:
    """What shipped for each seed: the cross-encoder alone or a package at its share (chosen on the dev splits)."""
    parts = []
    for run in runs:
        shipped = run.get("shipped") or {"kind": "cross_encoder"}
        what = "the cross-encoder alone"
        if shipped.get("kind") == "package":
            scale = shipped.get("scale", "query-min-max")
            what = f"a package, {shipped['share']:g} of the {shipped['first_stage']} score (scale: {scale})"
        parts.append(f"seed {run['seed']}: {what}")
    return "What shipped, as the package stage chose on the dev splits: " + "; ".join(parts) + "."


def markdown(report: dict[str, Any]) -> str:
    table, runs = report["table"], report["runs"]
    systems = present_systems(table)
    lines = [
        f"{report.get('recipe', 'Default recipe')}, {len(runs)} seed{'s' if len(runs) != 1 else ''} "
        f"({', '.join(str(run['seed']) for run in runs)}), measured "
        f"{report['date']} on {report['machine']['logical_cpus']} CPU cores; mean ± std over seeds "
        "(the baselines are deterministic).",
    ]
    lines += [
        "",
        shipped_sentence(runs) + " The cross-encoder alone is shown beside it.",
        "",
        "| dataset | metric | " + " | ".join(column_label(report, s) for s in systems) + " |",
        "|---|---|" + "---:|" * len(systems),
    ]
    for dataset, label in DATASETS.items():
        for metric in METRICS:
            cells = table.get(dataset, {}).get(metric)
            if not cells:
                continue
            row = [f"{cells[s]['mean']:.4f} ± {cells[s]['std']:.4f}" if s in cells else "-" for s in systems]
            lines.append(f"| {label} | {metric.upper()} | " + " | ".join(row) + " |")
    timing = training_time_line(runs)
    if timing:
        lines += ["", timing]
    lines += ["", "| target | ours | bar | met |", "|---|---:|---:|---|"]
    for check in report["targets"]:
        bar = check.get("best_baseline", check.get("target"))
        metric = check["metric"].upper()
        if check["kind"] == "must":
            rivals = " and ".join("BM25" if rival == "bm25" else "the bi-encoder" for rival in check["rivals"])
            who = "cross-encoder alone" if check["system"] == "cross_encoder" else "as shipped"
            name = f"{who}: {DATASETS[check['dataset']]} {metric} above {rivals}"
        else:
            name = f"aim: {DATASETS[check['dataset']]} {metric} >= {bar:.2f}"
        lines.append(f"| {name} | {check['ours']:.4f} | {bar:.4f} | {'yes' if check['met'] else 'no'} |")
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def training_time_line(runs: list[dict[str, Any]]) -> str | None:
    """Minutes of training per seed; a seed resumed from a checkpoint says so, its time counting from the resume."""
    parts = []
    for run in runs:
        if not run.get("training_seconds"):
            continue
        minutes = f"{run['training_seconds'] / 60:.1f}"
        if run.get("resumed_from"):
            minutes += f" (seed {run['seed']}, after resuming from {Path(run['resumed_from']).name})"
        parts.append(minutes)
    if not parts:
        return None
    return (
        f"Training time per seed: {', '.join(parts)} minutes (the trainer's wall clock, including its checkpoint saves "
        "and the evaluations of `train.evaluation`)."
    )


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = report["table"]
    groups = [(d, m) for d in DATASETS for m in ("ndcg@10", "mrr@10") if m in table.get(d, {})]
    figure, axis = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4.6))
    systems = present_systems(table)
    width = 0.8 / len(systems)
    for offset, system in enumerate(systems):
        means = [table[d][m].get(system, {}).get("mean", 0.0) for d, m in groups]
        stds = [table[d][m].get(system, {}).get("std", 0.0) for d, m in groups]
        positions = [i + (offset - (len(systems) - 1) / 2) * width for i in range(len(groups))]
        label = SYSTEM_LABELS[system]
        if system == "ours" and report.get("recipe", "Default recipe") != "Default recipe":
            label = "ours (" + report["recipe"].removeprefix("Recipe ") + ")"
        axis.bar(positions, means, width, yerr=stds, capsize=3, label=label)
    axis.set_xticks(range(len(groups)), [f"{DATASETS[d]}\n{m.upper()}" for d, m in groups], fontsize=8)
    axis.set_ylim(0, 1)
    seeds = len(report["runs"])
    recipe = report.get("recipe", "Default recipe")
    axis.set_title(f"{recipe} vs baselines ({seeds} seed{'s' if seeds != 1 else ''}, {report['date']})")
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(systems))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report = json.loads(args.output.with_suffix(".json").read_text())
        report["targets"] = check_targets(report["table"])
        write_outputs(report, args.output)
        print(markdown(report))
        return 0
    recipe = recipe_text(args)
    fingerprint = recipe_fingerprint(yaml.safe_load(recipe), args.overrides)
    measured = earlier_runs(args.output, fingerprint)
    shared = None
    runs = []
    for seed in args.seeds:
        if seed in measured:
            print(f"seed {seed}: reusing its results in {args.output.with_suffix('.json')}", flush=True)
            runs.append(measured[seed])
            continue
        shared = shared or prepare_shared(work, recipe, args.overrides, fingerprint)
        runs.append(run_seed(work, shared, seed, args.overrides, fingerprint))
        report = build_report(args, recipe, runs)
        write_outputs(report, args.output)  # after every seed: partial results survive an interruption
    if shared is None:  # every seed was measured before: the report is rewritten with the day they were measured
        report = build_report(args, recipe, runs)
        report["date"] = json.loads(args.output.with_suffix(".json").read_text()).get("date", report["date"])
        write_outputs(report, args.output)
    print(markdown(report))
    return 0


def earlier_runs(output: Path, fingerprint: str) -> dict[int, dict[str, Any]]:
    """Seeds already measured with this recipe in ``output``'s results file (the work folder may be gone)."""
    path = output.with_suffix(".json")
    if not path.is_file():
        return {}
    runs = json.loads(path.read_text()).get("runs", [])
    return {run["seed"]: run for run in runs if run.get("fingerprint") == fingerprint}


def build_report(args: argparse.Namespace, recipe: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    table = aggregate(runs)
    command = " ".join(["python benchmarks/quality.py", *(["--seeds", *map(str, args.seeds)])])
    if args.profile:
        command += f" --profile {args.profile}"
    command += "".join(f" --set {override}" for override in args.overrides)
    if args.set_from is not None:
        command += f" --set-from {args.set_from}"
    if args.output.resolve() != (RESULTS / "quality").resolve():
        command += f" --output {args.output}"
    return {
        "date": dt.date.today().isoformat(),
        "command": command,
        "recipe": recipe_label(args),
        "params": recipe,
        "overrides": args.overrides,
        "machine": machine(),  # the same description as the speed benchmark's results
        "runs": runs,
        "table": table,
        "targets": check_targets(table),
    }


def write_outputs(report: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    output.with_suffix(".md").write_text(markdown(report))
    chart(report, output.with_suffix(".png"))


if __name__ == "__main__":
    raise SystemExit(main())
