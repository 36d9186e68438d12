"""Hard-negative mining time and peak memory on 10k and 100k synthetic passages, by search strategy.

Method: a random bag-of-words bi-encoder (a seeded random 384-dim vector per word, MiniLM's width; a text is the
normalised mean of its words' vectors) embeds synthetic passages (20-60 random words) and queries (4-10 words of
their positive; one query per 10 passages); the embeddings are computed once per corpus size, outside the timings.
Mining time does not depend on what the vectors mean, and a random BERT would spend the run embedding.
Each strategy then mines 5 negatives per query from the top 50
(``mine_hard_negatives(method="bi-encoder")``) in a fresh child process that reuses those embeddings, while a thread
samples the resident set size every 5 ms: the result is the wall time of the mining call and its peak RSS above the
RSS just before it. glibc serves allocations above 128 KiB with mmap, so freed arrays leave RSS at once.

Strategies: ``per-query`` scores one query at a time against the whole corpus (what mining did before the batched
blocks: ``query_batch_size=1`` and one block); ``batched`` is the default (256 queries x 16,384-passage blocks with a
running top-k); ``faiss-flat`` and ``faiss-hnsw`` search a faiss index (exact, and HNSW32, approximate), index build
included; their recall is the share of the batched (exact) negatives they also find.

Run: ``.venv/bin/python benchmarks/mining_scale.py`` (about 10 minutes on two cores); writes
``benchmarks/results/mining_scale.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "mining_scale"
STRATEGIES = {
    "per-query": {"query_batch_size": 1, "corpus_block_size": 10**9},
    "batched": {},
    "faiss-flat": {"faiss_index": "Flat"},
    "faiss-hnsw": {"faiss_index": "HNSW32"},
}
WORDS = (
    "the a of to in is was what who where when how why which capital city country river mountain paris france "
    "berlin germany rome italy london england cat dog animal sleeps runs eats food water big small red blue green "
    "man woman child person car bus train plane music song book reads question answer passage document history "
    "science energy market school health law war game film art island ocean forest bridge tower king queen"
).split()


def synthetic(passages: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Passages, queries (one per 10 passages) and each query's positive passage."""
    rng = random.Random(seed)
    corpus = [" ".join(rng.choices(WORDS, k=rng.randint(20, 60))) + f" {i}" for i in range(passages)]
    positives = rng.sample(corpus, passages // 10)
    queries = [" ".join(rng.sample(positive.split()[:-1], rng.randint(4, 10))) for positive in positives]
    return corpus, queries, positives


def embed(folder: Path, passages: int) -> None:
    """Write the random bag-of-words embeddings of every text of this corpus size (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(0)
    table = {word: rng.normal(size=384).astype(np.float32) for word in [*WORDS, *map(str, range(passages))]}
    corpus, queries, _ = synthetic(passages)
    texts = list(dict.fromkeys(corpus + queries))
    started = time.perf_counter()
    vectors = np.stack([np.mean([table[word] for word in text.split()], axis=0) for text in texts])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seconds = time.perf_counter() - started
    np.save(folder / f"embeddings-{passages}.npy", vectors.astype(np.float32))
    (folder / f"texts-{passages}.json").write_text(json.dumps({"texts": texts, "seconds": seconds}))


class Lookup:
    """An encoder returning precomputed embeddings (the benchmark times mining, not the bi-encoder)."""

    def __init__(self, texts: list[str], vectors: Any) -> None:
        self.row = {text: index for index, text in enumerate(texts)}
        self.vectors = vectors

    def encode(self, texts: list[str], batch_size: int = 64, show_progress_bar: bool | None = None) -> Any:
        return self.vectors[[self.row[text] for text in texts]]


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mine_child(folder: Path, passages: int, strategy: str, out: Path) -> None:
    """One mining run: wall time, peak RSS above the start, and the mined negatives (for recall)."""
    import numpy as np
    import pandas as pd

    from rerank_lib.data import mine_hard_negatives

    corpus, queries, positives = synthetic(passages)
    texts = json.loads((folder / f"texts-{passages}.json").read_text())["texts"]
    encoder = Lookup(texts, np.load(folder / f"embeddings-{passages}.npy"))
    frame = pd.DataFrame({"query": queries, "positive": positives})
    baseline, peak, running = rss_bytes(), [0], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    mined = mine_hard_negatives(
        frame,
        encoder,
        corpus=corpus,
        method="bi-encoder",
        num_negatives=5,
        range_max=50,
        output_format="n-tuple",
        use_cache=False,
        show_progress_bar=False,
        **STRATEGIES[strategy],
    )
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
    negatives = mined[[c for c in mined.columns if c.startswith("negative")]].values.tolist()
    result = {"seconds": seconds, "peak_rss_mib": (max(peak[0], rss_bytes()) - baseline) / 2**20}
    result["load_average_1min_after"] = os.getloadavg()[0]  # the machine is shared: how busy it was
    out.write_text(json.dumps({**result, "queries": len(queries), "negatives": negatives}))


def run(sizes: list[int], strategies: list[str]) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mining-scale-") as scratch:
        folder = Path(scratch)
        for passages in sizes:
            embed(folder, passages)
            embed_seconds = json.loads((folder / f"texts-{passages}.json").read_text())["seconds"]
            exact = None
            for strategy in strategies:
                out = folder / f"{strategy}-{passages}.json"
                command = [sys.executable, __file__, "--child", str(passages), strategy, str(folder), str(out)]
                subprocess.run(command, check=True, env=env)
                record = json.loads(out.read_text())
                negatives = record.pop("negatives")
                if strategy == "batched":
                    exact = negatives
                recall = None
                if exact is not None and strategy.startswith("faiss"):
                    hits = sum(len(set(a) & set(b)) for a, b in zip(negatives, exact, strict=True))
                    recall = hits / sum(len(b) for b in exact)
                rows.append(
                    {"passages": passages, "strategy": strategy, **record, "recall_vs_batched": recall,
                     "embed_seconds": embed_seconds}
                )  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    return {
        "measured": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "command": "python benchmarks/mining_scale.py",
        "rows": rows,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Mining scale, measured {results['measured']} ({results['machine']['cpus']} CPUs): 5 negatives per query "
        "from the top 50, bi-encoder embeddings precomputed (384 dims).",
        "",
        "| passages | queries | strategy | seconds | peak RSS above start (MiB) | recall vs batched | load (1 min) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        recall = "" if row["recall_vs_batched"] is None else f"{row['recall_vs_batched']:.3f}"
        lines.append(
            f"| {row['passages']:,} | {row['queries']:,} | {row['strategy']} | {row['seconds']:.1f} | "
            f"{row['peak_rss_mib']:.0f} | {recall} | {row['load_average_1min_after']:.1f} |"
        )
    lines += ["", f"Command: `{results['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mine_child(Path(sys.argv[4]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = run(args.sizes, args.strategies)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
