"""Latency and throughput of the served champion: MLflow's scoring server and the /rerank API, torch and ONNX int8.

For a project root whose flow has registered a model (e.g. a root where `rerank --profile quick run` ran), it starts
`rerank serve-model` on loopback for each endpoint (`--api mlflow`: POST /invocations, `--api rerank`: POST
/rerank) and backend (torch fp32; ONNX dynamic int8), waits until healthy, warms it up, then for each request size
(1, 20 and 100 pairs) sends a bounded number of requests from a bounded number of concurrent clients and records
each request's latency (p50, p95, p99) and the throughput (requests/s, pairs/s). Beside them it measures what
`rerank predict` runs offline (load_reranker + predict, batch 32) on the same pairs, per backend.

A request of N pairs is one WikiQA train question with N train sentences (as N `dataframe_records` rows for MLflow,
one query and N documents for /rerank); requests cycle through the questions and sentences. The client runs on the
same machine as the server, so both share its cores.

Run: ``.venv/bin/python benchmarks/serve_latency.py --root DIR [--profile quick]``; writes
``benchmarks/results/serve_latency.json`` and ``.md``. ``--note`` adds a line to the results (e.g. that the
machine was shared).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

WIKIQA_FILE = ROOT / "data" / "raw" / "wikiqa" / "WikiQA-train.tsv"
RESULTS = ROOT / "benchmarks" / "results"
BACKENDS = {"torch": {"backend": "torch", "quantize": None}, "onnx int8": {"backend": "onnx", "quantize": "int8"}}
APIS = ("mlflow", "rerank")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="project root holding params.yaml and the registry")
    parser.add_argument("--profile", default=None, help="params profile of that root (e.g. quick)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 20, 100], help="pairs per request")
    parser.add_argument("--requests", type=int, nargs="+", default=[60, 40, 20], help="requests per size")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per size first")
    parser.add_argument("--offline-pairs", type=int, default=600, help="pairs scored by the offline predict timing")
    parser.add_argument("--threads", type=int, default=None, help="scoring threads (serve-model --threads)")
    parser.add_argument(
        "--rerank-workers", type=int, default=1, help="/rerank: batches scored at once (serve-model --workers)"
    )
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--apis", nargs="+", choices=APIS, default=list(APIS))
    parser.add_argument("--note", default="", help="a line added to the results (e.g. that the machine was shared)")
    parser.add_argument("--output", type=Path, default=RESULTS / "serve_latency", help="results path without suffix")
    return parser.parse_args(argv)


def wikiqa_questions(path: Path = WIKIQA_FILE) -> tuple[list[str], list[str]]:
    """The distinct questions and every sentence of a WikiQA file: the requests' queries and passages."""
    from speed import wikiqa_pairs  # read as the catalog reads it (benchmarks/ is on the path when run or tested)

    frame = wikiqa_pairs(path)
    return list(dict.fromkeys(frame["question"])), frame["sentence"].tolist()


def request_pairs(index: int, size: int, questions: list[str], sentences: list[str]) -> tuple[str, list[str]]:
    start = (index * size) % len(sentences)
    documents = [sentences[(start + k) % len(sentences)] for k in range(size)]
    return questions[index % len(questions)], documents


def request_body(api: str, query: str, documents: list[str]) -> tuple[str, dict[str, Any]]:
    if api == "rerank":
        return "/rerank", {"query": query, "documents": documents}
    return "/invocations", {"dataframe_records": [{"query": query, "passage": d} for d in documents]}


# ----- servers -----
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    args: argparse.Namespace, api: str, backend: dict[str, Any], log: Path
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "rerank_app.cli", "--root", str(args.root)]
    command += ["--profile", args.profile] if args.profile else []
    command += ["serve-model", "--api", api, "--port", str(port), "--backend", backend["backend"]]
    command += ["--quantize", backend["quantize"]] if backend["quantize"] else []
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--workers", str(args.rerank_workers)] if api == "rerank" else []
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"not healthy after 600 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


# ----- load -----
async def drive(
    url: str, api: str, size: int, count: int, concurrency: int, questions: list[str], sentences: list[str]
) -> dict[str, Any]:
    """``count`` requests of ``size`` pairs, at most ``concurrency`` in flight; latencies in ms and throughput."""
    import httpx

    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors = 0

    async def one(client: httpx.AsyncClient, index: int) -> None:
        nonlocal errors
        path, body = request_body(api, *request_pairs(index, size, questions, sentences))
        async with limit:
            started = time.perf_counter()
            response = await client.post(url + path, json=body)
            latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(count)))
        wall = time.perf_counter() - started
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return {
        "pairs_per_request": size,
        "requests": count,
        "concurrency": concurrency,
        "errors": errors,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "requests_per_s": count / wall,
        "pairs_per_s": count * size / wall,
    }


def measure_server(args: argparse.Namespace, api: str, backend_name: str, work: Path, data: tuple) -> list[dict]:
    process, url = start_server(args, api, BACKENDS[backend_name], work / f"{api}-{backend_name}.log")
    try:
        rows = []
        for size, count in zip(args.sizes, args.requests, strict=True):
            asyncio.run(drive(url, api, size, args.warmup, 1, *data))
            row = asyncio.run(drive(url, api, size, count, args.concurrency, *data))
            rows.append({"endpoint": api, "backend": backend_name, **row})
            print(json.dumps(rows[-1]), flush=True)
        return rows
    finally:
        stop_server(process)


def measure_offline(args: argparse.Namespace, backend_name: str, work: Path, data: tuple) -> dict[str, Any]:
    """What `rerank predict` runs: load_reranker on the champion's folder, predict with batch 32."""
    from rerank_app.champion import download_model_folder, resolve_served_version
    from rerank_lib import load_reranker
    from tasks.config import load_params

    cfg = load_params(args.root / "params.yaml", profile=args.profile)
    served = resolve_served_version(cfg, args.root)
    folder = download_model_folder(served, work / f"offline-{backend_name.replace(' ', '-')}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_reranker(folder, device="cpu", num_threads=args.threads, **BACKENDS[backend_name])
    questions, sentences = data
    pairs = []
    for index in range(args.offline_pairs // 20):
        query, documents = request_pairs(index, 20, questions, sentences)
        pairs += [(query, d) for d in documents]
    model.predict(pairs[:64], batch_size=32, show_progress_bar=False)
    started = time.perf_counter()
    model.predict(pairs, batch_size=32, show_progress_bar=False)
    seconds = time.perf_counter() - started
    return {"endpoint": "rerank predict (offline)", "backend": backend_name, "pairs": len(pairs),
            "pairs_per_s": len(pairs) / seconds, "version": served.version}  # fmt: skip


# ----- report -----
def machine() -> dict[str, Any]:
    from speed import machine as speed_machine

    return speed_machine()


def command_line(argv: list[str]) -> str:
    """The command as run, with ``--note TEXT`` shortened (the note is printed on its own line)."""
    words = ["python", "benchmarks/serve_latency.py", *argv]
    if "--note" in words and words.index("--note") + 1 < len(words):
        words[words.index("--note") + 1] = "..."
    return shlex.join(words)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Serving latency ({result['date']})",
        "",
        f"Model: {result['model']} (project root `{result['root']}`, "
        f"{'profile ' + result['profile'] if result['profile'] else 'its params.yaml'}). "
        f"Machine: {result['machine']['cpu']}, {result['machine']['logical_cpus']} logical CPUs, no GPU; "
        f"load average {result['load_start'][0]:.2f} at start, {result['load_end'][0]:.2f} at the end; "
        f"scoring threads: {result['threads'] or 'torch default'}; `/rerank` batches scored at once: "
        f"{result.get('rerank_workers', 1)} (MLflow's server scores each request in its own thread). "
        f"Command: `{result['command']}`.",
    ]
    if result["note"]:
        lines += ["", result["note"]]
    lines += [
        "",
        "| endpoint | backend | pairs/request | requests | concurrency | p50 ms | p95 ms | p99 ms "
        "| requests/s | pairs/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["servers"]:
        endpoint = "MLflow `/invocations`" if row["endpoint"] == "mlflow" else "`/rerank`"
        lines.append(
            f"| {endpoint} | {row['backend']} | {row['pairs_per_request']} | {row['requests']} | {row['concurrency']} "
            f"| {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['p99_ms']:.0f} | {row['requests_per_s']:.1f} "
            f"| {row['pairs_per_s']:.0f} |"
        )
    for row in result["offline"]:
        lines.append(
            f"| `rerank predict` (offline, batch 32) | {row['backend']} | {row['pairs']} pairs, one call | | | | | | "
            f"| {row['pairs_per_s']:.0f} |"
        )
    errors = sum(row["errors"] for row in result["servers"])
    lines += ["", f"Failed requests: {errors}. With 20-60 requests per row, p99 is close to the slowest request."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.root = args.root.resolve()
    if len(args.sizes) != len(args.requests):
        raise SystemExit("--sizes and --requests need the same number of values")
    from rerank_app.champion import resolve_served_version
    from tasks.config import load_params

    served = resolve_served_version(load_params(args.root / "params.yaml", profile=args.profile), args.root)
    data = wikiqa_questions()
    load_start = os.getloadavg()
    servers, offline = [], []
    with tempfile.TemporaryDirectory(prefix="serve-latency-") as tmp:
        work = Path(tmp)
        for backend in args.backends:
            offline.append(measure_offline(args, backend, work, data))
            print(json.dumps(offline[-1]), flush=True)
            for api in args.apis:
                servers += measure_server(args, api, backend, work, data)
    result = {
        "date": dt.date.today().isoformat(),
        "command": command_line(argv if argv is not None else sys.argv[1:]),
        "root": str(args.root),
        "profile": args.profile,
        "model": served.describe(),
        "machine": machine(),
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "threads": args.threads,
        "rerank_workers": args.rerank_workers,
        "note": args.note,
        "servers": servers,
        "offline": offline,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
