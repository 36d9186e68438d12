"""The `rerank` command: run the flow, one stage (as DVC does), predict, evaluate, promote, rollback, serve."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import yaml

from rerank_lib.backends._common import BACKENDS, PRECISIONS, QUANTIZATIONS
from rerank_lib.errors import RerankError
from tasks.config import load_params, parse_set_overrides
from tasks.layout import STAGE_ORDER, Layout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank",
        description="Train, evaluate, document, register and promote a cross-encoder reranker.",
    )
    parser.add_argument("--root", default=".", help="project root holding params.yaml, data/ and artifacts/")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the root")
    parser.add_argument("--profile", default=None, help="apply profiles/<name>.yaml on top (e.g. quick)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one param for this run, e.g. --set train.epochs=2 (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("run", help="run the whole retraining flow with Prefect")
    stage = commands.add_parser("stage", help="run one pipeline stage (what `dvc repro` calls)")
    stage.add_argument("name", choices=STAGE_ORDER)
    commands.add_parser("params", help="print the effective params (params.yaml + profile + --set) as YAML")

    predict = commands.add_parser("predict", help="score (query, passage) pairs from a JSONL file")
    predict.add_argument(
        "--model", required=True, help="model folder or Hub id (a folder saved with a score fusion scores fused)"
    )
    predict.add_argument("--input", required=True, help='JSONL with {"query": ..., "passage": ...} per line')
    predict.add_argument("--output", default="-", help="JSONL output with a score per line (default: stdout)")
    predict.add_argument("--batch-size", type=int, default=32)
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
    serve_model.add_argument("--workers", type=int, default=1, help="mlflow api: server processes")
    serve_model.add_argument("--max-batch-pairs", type=int, default=64, help="rerank api: pairs per model call")
    serve_model.add_argument(
        "--max-queue", type=int, default=32, help="rerank api: requests that may wait; more get 503"
    )
    return parser


def _read_pairs(path: str) -> list[tuple[str, str]]:
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pairs.append((str(row["query"]), str(row["passage"])))
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise RerankError(
                    f"{path}, line {line_number}: expected {{'query', 'passage'}} JSON ({error})."
                ) from error
    return pairs


def _predict(args: argparse.Namespace) -> None:
    from rerank_lib import load_reranker

    pairs = _read_pairs(args.input)
    # A model saved with a score fusion scores fused, as it was evaluated.
    model = load_reranker(args.model, backend=args.backend, quantize=args.quantize, precision=args.precision)
    scores = model.predict(pairs, batch_size=args.batch_size, show_progress_bar=True)
    lines = [json.dumps({"query": q, "passage": p, "score": float(s)}) for (q, p), s in zip(pairs, scores, strict=True)]
    text = "\n".join(lines) + ("\n" if lines else "")
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")


def _registry(cfg, root: Path):  # noqa: ANN001, ANN202 - small CLI glue
    from mlflow import MlflowClient

    from tasks.tracking import use_tracking

    use_tracking(cfg.tracking.tracking_uri, cfg.tracking.experiment, root)
    return MlflowClient()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = Path(args.root).resolve()
    try:
        overrides = parse_set_overrides(args.overrides)
        cfg = load_params(root / args.params, profile=args.profile, overrides=overrides)
        if args.command == "params":
            sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True), sort_keys=False))
        elif args.command == "stage":
            from tasks.stages import STAGES

            STAGES[args.name](cfg, Layout(root))
        elif args.command == "run":
            from flows.retrain import retrain

            outputs = retrain(root=str(root), params_path=args.params, profile=args.profile, overrides=overrides)
            print("\nRetraining finished:")
            for name, value in outputs.items():
                print(f"  {name:20s} {value}")
        elif args.command == "predict":
            _predict(args)
        elif args.command == "evaluate":
            import tempfile

            from tasks.evaluate import run_evaluate

            out = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="rerank-eval-"))
            layout = Layout(root)
            result = run_evaluate(cfg.evaluate, cfg.tracking, Path(args.model), layout.prepared, out, root)
            print(json.dumps({"metrics": result.metrics, "metrics_file": str(result.metrics_path)}, indent=2))
        elif args.command in ("promote", "rollback"):
            from tasks.promote import promote_version, rollback

            client = _registry(cfg, root)
            name = cfg.register.registered_model
            if args.command == "promote":
                version = promote_version(cfg.promote, client, name, args.version, root / "artifacts")
            else:
                version = rollback(cfg.promote, client, name, root / "artifacts")
            print(f"{name}@{cfg.promote.champion_alias} -> version {version}")
        elif args.command == "serve":
            from rerank_app.local_prefect import serve_on_schedule

            serve_on_schedule(root, args.params, args.profile)
        elif args.command == "serve-model":
            from rerank_app.serve_model import serve_registered_model

            options = {"backend": args.backend, "quantize": args.quantize, "precision": args.precision}
            options["num_threads"] = args.threads
            batching = {"max_batch_pairs": args.max_batch_pairs, "max_queued": args.max_queue}
            serve_registered_model(
                cfg, root, args.api, args.host, args.port, args.version, options, args.workers, batching
            )
    except RerankError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
