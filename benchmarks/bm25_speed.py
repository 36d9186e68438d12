"""BM25 on bm25s + PyStemmer against the implementation it replaced: index and search time, and the baselines.

The replaced implementation (its own sparse index and a pure-Python Porter stemmer, ``rerank_lib/evaluation/bm25.py``
and ``porter.py``) is read from git history at ``--before`` into a temporary module, so both run in one process on
the same machine, turn by turn:

* **speed**: SciFact's 5,183 abstracts indexed (no cache), then its 188 judged dev claims searched for their top 100;
  the median of ``--rounds`` rounds, the two implementations alternating within each round.
* **quality**: NDCG@10 of BM25's own top-100 order on SciFact dev and TREC-DL19, measured by the evaluate stage's
  BEIR evaluator (its ``base`` metric), with each implementation as its first stage. A third row is bm25s with
  Snowball's Porter stemmer alone, without the ``-logi`` rule ``rerank_lib.retrieval.bm25`` adds.

Run from the project root: ``.venv/bin/python benchmarks/bm25_speed.py`` (about a minute on 2 cores); it writes
``benchmarks/results/bm25_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from speed import machine

import rerank_lib.evaluation.beir as beir_evaluation
from rerank_lib.evaluation import CrossEncoderBEIREvaluator
from rerank_lib.retrieval import BM25, load_beir
from rerank_lib.retrieval import bm25 as bm25_module

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "089311359772203f6f559147b87eed5152827087"  # the last commit with rerank_lib's own BM25 and Porter stemmer
SCIFACT = ROOT / "data" / "raw" / "scifact"
DATASETS = {"scifact_dev": (SCIFACT, "dev"), "trec_dl19": (ROOT / "data" / "raw" / "msmarco-trec-dl19", "test")}
TOP_K = 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per implementation (default: 3)")
    parser.add_argument("--before", default=BEFORE, help="git commit holding the replaced implementation")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "bm25_speed")
    return parser.parse_args()


def replaced_bm25(commit: str, folder: Path) -> type:
    """The BM25 class of ``commit``, with its Porter stemmer, imported from files written to ``folder``."""
    package = folder / "bm25_before"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("bm25", "porter"):
        source = subprocess.run(
            ["git", "show", f"{commit}:rerank_lib/evaluation/{name}.py"], cwd=ROOT, check=True, capture_output=True
        ).stdout.decode()
        source = source.replace("from rerank_lib.evaluation.porter import", "from bm25_before.porter import")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("bm25_before.bm25", package / "bm25.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.BM25


def snowball_porter_only(text: str) -> list[str]:
    """The library's analyzer without its ``-logi`` rule: Snowball's Porter stemmer as PyStemmer gives it."""
    tokens = []
    for token in bm25_module._TOKEN.findall(text.lower()):
        token = token[:-2] if token.endswith(bm25_module._POSSESSIVE) else token
        if token and token not in bm25_module.ENGLISH_STOP_WORDS:
            tokens.append(token if len(token) <= 2 else bm25_module._porter().stemWord(token))
    return tokens


def timed_round(bm25_class: Any, corpus: dict, queries: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    index = bm25_class().fit(corpus)
    indexed = time.perf_counter()
    for query in queries:
        index.search(query, TOP_K)
    return indexed - start, time.perf_counter() - indexed


class NoScores:
    """A model that scores nothing: the evaluator's ``base`` metrics (BM25's own order) are what is read."""

    def predict(self, pairs: list, **_: Any) -> np.ndarray:
        return np.zeros(len(pairs))


def baseline_ndcg(first_stage: Any) -> dict[str, float]:
    """The evaluate stage's BEIR evaluator with ``first_stage`` as its BM25: base NDCG@10 per dataset."""
    evaluator = CrossEncoderBEIREvaluator(
        {name: folder for name, (folder, _) in DATASETS.items()},
        splits={name: split for name, (_, split) in DATASETS.items()},
        top_k=TOP_K,
        use_cache=False,
    )
    with mock.patch.object(beir_evaluation, "BM25", first_stage):
        results = evaluator(NoScores())
    return {name: round(results[f"{name}_base_ndcg@10"], 4) for name in DATASETS}


def main() -> None:
    args = parse_args()
    load_at_start = os.getloadavg()
    corpus, queries, qrels = load_beir(SCIFACT, "dev")
    judged = [
        text for query_id, text in queries.items() if any(grade > 0 for grade in qrels.get(query_id, {}).values())
    ]
    with tempfile.TemporaryDirectory() as folder:
        implementations = {"before: own index + pure-Python Porter": replaced_bm25(args.before, Path(folder))}
        implementations["now: bm25s + PyStemmer"] = BM25
        times: dict[str, dict[str, list[float]]] = {name: {"index": [], "search": []} for name in implementations}
        for round_number in range(args.rounds):
            order = list(implementations) if round_number % 2 == 0 else list(reversed(implementations))
            for name in order:
                index_seconds, search_seconds = timed_round(implementations[name], corpus, judged)
                times[name]["index"].append(index_seconds)
                times[name]["search"].append(search_seconds)
        quality = {name: baseline_ndcg(bm25_class) for name, bm25_class in implementations.items()}
    quality["bm25s + Snowball Porter alone (no -logi rule)"] = baseline_ndcg(
        partial(BM25, tokenizer=snowball_porter_only)
    )
    rows = []
    for name in implementations:
        index_median, search_median = (statistics.median(times[name][part]) for part in ("index", "search"))
        rows.append(
            {
                "implementation": name,
                "index_seconds": round(index_median, 3),
                "search_seconds": round(search_median, 3),
                "queries_per_second": round(len(judged) / search_median, 1),
                "rounds": {part: [round(value, 3) for value in values] for part, values in times[name].items()},
                "ndcg@10": quality[name],
            }
        )
    report = {
        "date": dt.date.today().isoformat(),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(),
        "load_average_start_end": [round(load_at_start[0], 2), round(os.getloadavg()[0], 2)],
        "before_commit": args.before,
        "corpus_documents": len(corpus),
        "queries": len(judged),
        "top_k": TOP_K,
        "rows": rows,
        "ndcg@10_without_logi_rule": quality["bm25s + Snowball Porter alone (no -logi rule)"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    before, now = report["rows"]
    lines = [
        f"Measured {report['date']} on {report['machine']['cpu']} ({report['machine']['logical_cpus']} logical CPUs), "
        f"`{report['command']}`: SciFact's {report['corpus_documents']:,} abstracts indexed, its "
        f"{report['queries']} judged dev claims searched (top {report['top_k']}); median of "
        f"{len(before['rounds']['index'])} rounds (1-minute load average {report['load_average_start_end'][0]} at "
        f"the start, {report['load_average_start_end'][1]} at the end). NDCG@10: BM25's own top-{report['top_k']} "
        "order, the BEIR evaluator's `base` metric.",
        "",
        "| implementation | index (s) | search (s) | queries/s | SciFact dev NDCG@10 | TREC-DL19 NDCG@10 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        ndcg = row["ndcg@10"]
        lines.append(
            f"| {row['implementation']} | {row['index_seconds']:.2f} | {row['search_seconds']:.2f} | "
            f"{row['queries_per_second']:.0f} | {ndcg['scifact_dev']:.4f} | {ndcg['trec_dl19']:.4f} |"
        )
    plain = report["ndcg@10_without_logi_rule"]
    lines += [
        f"| bm25s + Snowball Porter alone (no `-logi` rule) | | | | {plain['scifact_dev']:.4f} | "
        f"{plain['trec_dl19']:.4f} |",
        "",
        f"Time before / time now: indexing {before['index_seconds'] / now['index_seconds']:.2f}x, searching "
        f"{before['search_seconds'] / now['search_seconds']:.2f}x (above 1: now is faster). The replaced "
        f"implementation is `rerank_lib/evaluation/bm25.py` and `porter.py` at {report['before_commit'][:7]}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
