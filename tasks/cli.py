"""The `rerank` command: run one stage (as DVC does), the whole flow, or print the effective params."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

from rerank_lib.errors import RerankError
from tasks.config import load_params
from tasks.layout import Layout
from tasks.stages import STAGE_ORDER, STAGES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank",
        description="Train, evaluate, document and register a cross-encoder reranker.",
    )
    parser.add_argument("--root", default=".", help="project root holding params.yaml, data/ and artifacts/")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the root")
    parser.add_argument("--profile", default=None, help="apply profiles/<name>.yaml on top (e.g. quick)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    stage = commands.add_parser("stage", help="run one pipeline stage (what `dvc repro` calls)")
    stage.add_argument("name", choices=STAGE_ORDER)
    commands.add_parser("run", help="run the whole retraining flow with Prefect")
    commands.add_parser("params", help="print the effective params (params.yaml + profile) as YAML")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = Path(args.root).resolve()
    try:
        cfg = load_params(root / args.params, profile=args.profile)
        if args.command == "params":
            sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        elif args.command == "stage":
            STAGES[args.name](cfg, Layout(root))
        elif args.command == "run":
            from flows.retrain import retrain

            outputs = retrain(root=str(root), params_path=args.params, profile=args.profile)
            print("\nRetraining finished:")
            for name, value in outputs.items():
                print(f"  {name:20s} {value}")
    except RerankError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
