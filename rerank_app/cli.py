"""The `rerank` command: run the flow, one stage (as DVC does), predict, evaluate, promote, rollback, serve."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rerank_lib.backends._common import BACKENDS, PRECISIONS, QUANTIZATIONS
from rerank_lib.errors import RerankError
from tasks.config import PipelineConfig, load_params, parse_set_overrides
from tasks.layout import STAGE_ORDER, Layout
from tasks.param_checks import check_params


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero (argparse then names the option in its error line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank",
        description="Train, evaluate, document, register and promote a cross-encoder reranker.",
    )
    _add_project_options(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_pipeline_commands(commands)
    _add_model_commands(commands)
    _add_serving_commands(commands)
    return parser


def _add_project_options(parser: argparse.ArgumentParser) -> None:
    """Where the project is and which params apply: shared by every command."""
    parser.add_argument("--root", default=".", help="project root holding params.yaml, data/ and artifacts/")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the root")
    parser.add_argument(
        "--profile", default=None, help="apply profiles/<name>.yaml (e.g. quick) or a YAML file's path on top"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one param for this run, e.g. --set train.epochs=2 (repeatable)",
    )
    parser.add_argument(
        "--replace",
        dest="replacements",
        action="append",
        default=[],
        metavar="SECTION.KEY=MAPPING",
        help="like --set, but the mapping replaces the one in params instead of merging into it, e.g. "
        "--replace 'train.datasets={mine: {loss: LambdaLoss}}' (repeatable)",
    )
    parser.add_argument(
        "--set-from",
        dest="set_from",
        action="append",
        default=[],
        metavar="FILE",
        help="apply a YAML file of params values for this run, e.g. artifacts/tune/best.yaml (before --set)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _add_pipeline_commands(commands: Any) -> None:
    """The pipeline: the flow, one stage, params, tuning, dvc.yaml and a profile for new data."""

    commands.add_parser("run", help="run the whole retraining flow with Prefect")
    stage = commands.add_parser("stage", help="run one pipeline stage (what `dvc repro` calls)")
    stage.add_argument("name", choices=STAGE_ORDER)
    commands.add_parser("params", help="print the effective params (params.yaml + profile + --set) as YAML")
    tune = commands.add_parser(
        "tune",
        help="search the recipe (tune.space) with optuna, judged on the dev suite; writes artifacts/tune/best.yaml",
    )
    tune.add_argument(
        "--in-process", action="store_true", help="run the trials one after another here, without Prefect (as DVC does)"
    )
    tune.add_argument("--max-trials", type=positive_int, default=None, help="with --in-process: at most N trials")
    tune.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one trial for the flow, no summary

    dvc_yaml = commands.add_parser(
        "dvc-yaml", help="write dvc.yaml from the params (and --profile): each stage's data, code and params deps"
    )
    dvc_yaml.add_argument("--check", action="store_true", help="only check that dvc.yaml is up to date (exit 2 if not)")
    dvc_yaml.add_argument(
        "--tune", action="store_true", help="also write tune/dvc.yaml: the tune stage, run by `dvc repro tune/dvc.yaml`"
    )
    init_data = commands.add_parser(
        "init-data", help="look at a data file or BEIR folder and print a profile (catalog entry, loss, evaluator)"
    )
    init_data.add_argument("path", help="a csv/tsv/jsonl/parquet file, or a BEIR folder (corpus, queries, qrels/)")
    init_data.add_argument("--name", default=None, help="the dataset's catalog name (default: from the file name)")


def _add_model_commands(commands: Any) -> None:
    """One model folder or registered version: predict, evaluate, promote, rollback."""
    predict = commands.add_parser("predict", help="score (query, passage) pairs from a JSONL file")
    predict.add_argument("--model", required=True, help="model folder or Hub id (a rerank package scores as a package)")
    predict.add_argument(
        "--input",
        required=True,
        help='JSONL with {"query": ..., "passage": ...} per line (a package also takes "first_stage_score")',
    )
    predict.add_argument("--output", default="-", help="JSONL output with a score per line (default: stdout)")
    predict.add_argument("--batch-size", type=positive_int, default=32, help="pairs per batch (default: 32)")
    predict.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="inference engine; onnx/openvino export the model into <model>/onnx or <model>/openvino on first use",
    )
    predict.add_argument("--quantize", choices=QUANTIZATIONS, default=None, help="int8: dynamic int8 (needs onnx)")
    predict.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16: torch or openvino only")

    evaluate = commands.add_parser("evaluate", help="evaluate a model folder on the prepared test questions")
    evaluate.add_argument("--model", required=True, help="model folder")
    evaluate.add_argument("--output", default=None, help="folder for metrics.json (default: a temporary report)")

    promote = commands.add_parser("promote", help="make a registered version the champion by hand")
    promote.add_argument("--version", required=True, help="registered model version")
    commands.add_parser("rollback", help="move the champion alias back to the previous champion")


def _add_serving_commands(commands: Any) -> None:
    """Long-running: the scheduled flow, and the champion over HTTP."""
    commands.add_parser(
        "serve",
        help="serve the retrain flow on the cron schedule from params.yaml (starts a local Prefect server "
        "when PREFECT_API_URL is unset)",
    )
    serve_model_help = (
        "serve the registered champion over HTTP: MLflow's scoring server (POST /invocations) or a rerank API "
        "(POST /rerank)"
    )
    serve_model = commands.add_parser("serve-model", help=serve_model_help, description=serve_model_help)
    serve_model.add_argument(
        "--api",
        choices=("mlflow", "rerank"),
        default="mlflow",
        help="mlflow: `mlflow models serve` (dataframe_split/dataframe_records rows of query and passage); "
        "rerank: POST /rerank {query, documents, top_n} -> [{index, relevance_score}]",
    )
    serve_model.add_argument("--host", default="127.0.0.1")
    serve_model.add_argument("--port", type=int, default=5001)
    serve_model.add_argument("--version", default=None, help="registered version to serve (default: the champion)")
    serve_model.add_argument("--backend", choices=BACKENDS, default="torch", help="inference engine (as predict)")
    serve_model.add_argument("--quantize", choices=QUANTIZATIONS, default=None, help="int8: dynamic int8 (onnx)")
    serve_model.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16: torch or openvino only")
    serve_model.add_argument("--threads", type=int, default=None, help="CPU threads for scoring (default: torch's)")
    serve_model.add_argument(
        "--workers",
        type=int,
        default=1,
        help="mlflow api: server processes; rerank api: batches scored at once, in threads sharing one loaded model "
        "(with --threads T, about T x workers cores are used)",
    )
    serve_model.add_argument("--max-batch-pairs", type=int, default=64, help="rerank api: pairs per model call")
    serve_model.add_argument(
        "--max-queue", type=int, default=32, help="rerank api: requests that may wait; more get 503"
    )


def _predict(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    """Pairs and output are checked before the model loads; the model scores as it was evaluated (fused or not)."""
    from rerank_app.predict import check_output_writable, read_first_stage_scores, read_pairs, write_scores
    from rerank_lib import RerankPackage, load_reranker

    pairs = read_pairs(args.input)
    given = read_first_stage_scores(args.input)
    check_output_writable(args.output)
    model = load_reranker(args.model, backend=args.backend, quantize=args.quantize, precision=args.precision)
    if given is not None and not isinstance(model, RerankPackage):
        raise RerankError(f"--input gives first_stage_score, but {args.model} is not a package: nothing would use it.")
    extra = {"first_stage_scores": given} if given is not None else {}
    scores = model.predict(pairs, batch_size=args.batch_size, show_progress_bar=True, **extra)
    write_scores(args.output, pairs, scores)


def _evaluate(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    """Evaluate a model folder; a temporary report folder is removed again when the evaluation fails."""
    from tasks.evaluate import run_evaluate

    if not Path(args.model).is_dir():
        raise RerankError(f"--model {args.model}: no such model folder.")
    out = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="rerank-eval-"))
    try:
        result = run_evaluate(cfg.evaluate, cfg.tracking, Path(args.model), Layout(root).prepared, out, root)
    except BaseException:
        if not args.output:
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(json.dumps({"metrics": result.metrics, "metrics_file": str(result.metrics_path)}, indent=2))


def _registry(cfg: PipelineConfig, root: Path) -> Any:
    from mlflow import MlflowClient

    from tasks.tracking import use_tracking

    use_tracking(cfg.tracking.tracking_uri, cfg.tracking.experiment, root)
    return MlflowClient()


def _promote(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    from tasks.promote import promote_version, rollback

    client = _registry(cfg, root)
    name = cfg.register.registered_model
    if args.command == "promote":
        version = promote_version(cfg.promote, client, name, args.version, root / "artifacts")
    else:
        version = rollback(cfg.promote, client, name, root / "artifacts")
    print(f"{name}@{cfg.promote.champion_alias} -> version {version}")


def _params(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    check_params(cfg)
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True), sort_keys=False))


def _stage(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    from tasks.stages import STAGES

    STAGES[args.name](cfg, Layout(root))


def _run(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    from flows.retrain import retrain

    check_params(cfg)
    outputs = retrain(root=str(root), params_path=args.params, profile=args.profile, overrides=args.parsed_overrides)
    print("\nRetraining finished:")
    for name, value in outputs.items():
        print(f"  {name:20s} {value}")


def _tune(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    """The study in the Prefect flow (trials as tasks), or here, trial after trial (--in-process, the DVC stage)."""
    check_params(cfg)
    if args.worker or args.in_process:
        from tasks.tune import run_tune

        limit = 1 if args.worker else args.max_trials
        result = run_tune(cfg, Layout(root), max_trials=limit, summarize=not args.worker)
        outputs = {"study": result.study, "trials": f"{result.trials_finished} of {result.trials_planned}"}
        outputs |= {"best_trial": result.best_trial, "best": [str(path) for path in result.files]}
    else:
        from flows.tune import run_tune_flow

        concurrency = cfg.tune.concurrency if cfg.tune is not None else 1
        outputs = run_tune_flow(str(root), args.params, args.profile, args.parsed_overrides, concurrency)
    print("\nTuning:")
    for name, value in outputs.items():
        print(f"  {name:15s} {value}")
    from tasks.tune_result import BEST_YAML

    if any(Path(path).name == BEST_YAML for path in outputs.get("best") or []):
        print("  apply with     rerank --set-from artifacts/tune/best.yaml run")
    elif outputs.get("best"):
        print("  nothing to apply: no trial finished its training (each trial's state: artifacts/tune/best.json)")


def with_set_from(files: list[str], overrides: dict[str, Any]) -> dict[str, Any]:
    """The ``--set-from`` files' values, then the ``--set`` overrides on top, as one overrides mapping."""
    from tasks.param_sources import deep_merge, read_yaml

    merged: dict[str, Any] = {}
    for file in files:  # already read and checked by load_params
        merged = deep_merge(merged, read_yaml(Path(file).expanduser(), "--set-from file"))
    return deep_merge(merged, overrides)


def _dvc_yaml(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    """Write (or check) dvc.yaml for the params file and profile; --set values cannot live in dvc.yaml."""
    from rerank_lib.atomic import write_text_atomic
    from tasks.dvc_stages import DVC_FILE, dvc_pipeline, render
    from tasks.dvc_tune_stage import TUNE_DVC_FILE, render_tune, tune_pipeline
    from tasks.param_sources import profile_path, read_yaml

    if args.overrides or args.replacements or args.set_from:
        raise RerankError(
            "dvc-yaml: `dvc repro` cannot repeat --set/--replace/--set-from values; put them in a profile (a "
            "--set-from file such as artifacts/tune/best.yaml is one: --profile artifacts/tune/best.yaml)."
        )
    profile, profile_data = None, {}
    if args.profile:
        found = profile_path(args.profile, root).resolve()
        profile = os.path.relpath(found, root)
        profile_data = read_yaml(found, "Profile")
    params_data = read_yaml(root / args.params, "Params file")
    files = {root / DVC_FILE: render(dvc_pipeline(cfg, root, args.params, params_data, profile, profile_data))}
    # The tune stage lives apart, so `dvc repro` and `dvc status` never include a study; it is written when asked
    # for, and checked once it exists.
    if args.tune or (args.check and (root / TUNE_DVC_FILE).is_file()):
        tune = tune_pipeline(cfg, root, args.params, params_data, profile, profile_data)
        if tune is None:
            raise RerankError("dvc-yaml --tune: the params have no `tune` section.")
        files[root / TUNE_DVC_FILE] = render_tune(tune)
    if args.check:
        for target, text in files.items():
            found = target.read_text(encoding="utf-8") if target.is_file() else None
            if found != text:
                raise RerankError(f"{target} does not match the params; run `rerank dvc-yaml` to write it.")
            print(f"{target} is up to date")
        return
    for target, text in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text)
        print(f"wrote {target}")


def _init_data(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    from tasks.data_inspection import propose, render_proposal

    path = Path(args.path).expanduser()
    profile, notes = propose(path if path.is_absolute() else Path.cwd() / path, root, args.name)
    sys.stdout.write(render_proposal(profile, notes, path))


def _serve(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    """Scheduled retraining: a local Prefect server (started and stopped here) unless PREFECT_API_URL names one."""
    from rerank_app.local_prefect import serve_on_schedule

    serve_on_schedule(root, args.params, args.profile)


def _serve_model(args: argparse.Namespace, root: Path, cfg: PipelineConfig) -> None:
    """Serve the champion (or ``--version``) with MLflow's scoring server or the /rerank API."""
    from rerank_app.serve_model import serve_registered_model

    options = {"backend": args.backend, "quantize": args.quantize, "precision": args.precision}
    options["num_threads"] = args.threads
    batching = {"max_batch_pairs": args.max_batch_pairs, "max_queued": args.max_queue}
    serve_registered_model(cfg, root, args.api, args.host, args.port, args.version, options, args.workers, batching)


COMMANDS: dict[str, Callable[[argparse.Namespace, Path, PipelineConfig], None]] = {
    "params": _params,
    "tune": _tune,
    "stage": _stage,
    "run": _run,
    "predict": _predict,
    "evaluate": _evaluate,
    "promote": _promote,
    "rollback": _promote,
    "serve": _serve,
    "serve-model": _serve_model,
    "dvc-yaml": _dvc_yaml,
    "init-data": _init_data,
}


def main(argv: list[str] | None = None) -> int:
    # Prefect's local server pings its makers at start; offline that logs an ERROR on every run. Opt out unless the
    # user has chosen otherwise.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = Path(args.root).resolve()
    try:
        overrides = parse_set_overrides(args.overrides, args.replacements)
        cfg = load_params(root / args.params, args.profile, overrides, profiles_root=root, set_from=args.set_from)
        args.parsed_overrides = with_set_from(args.set_from, overrides)  # one mapping, for the flows' parameters
        COMMANDS[args.command](args, root, cfg)
    except RerankError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # A progress bar may be mid-line: the error starts a line of its own.
        print("\nerror: interrupted; files are written atomically, so nothing half-written was kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
