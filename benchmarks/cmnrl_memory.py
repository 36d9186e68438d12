"""Peak memory of CachedMultipleNegativesRankingLoss at mini-batch 8 vs 64, and of the uncached loss, on CPU.

Method: each configuration runs in a fresh child process on the same random BERT and the same batch (same seed,
so the same in-batch negatives; dropout off, so the losses are identical). After loading the model and one small
warm-up step, the child records its resident set size (RSS), then runs one forward + backward of the loss while a
thread samples RSS every millisecond; the result is the peak RSS above that baseline. glibc is told to serve every
allocation above 128 KiB with mmap (``MALLOC_MMAP_THRESHOLD_``), so freed tensors leave RSS at once and the peak
tracks live tensor memory.

Run: ``.venv/bin/python benchmarks/cmnrl_memory.py`` (about a minute on two cores); writes
``benchmarks/results/cmnrl_memory.json``.
"""

from __future__ import annotations

import argparse
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
RESULTS = ROOT / "benchmarks" / "results" / "cmnrl_memory.json"
BATCH = 32  # anchors per batch
NUM_NEGATIVES = 3  # in-batch negatives per anchor: 32 * (1 + 3) = 128 scored pairs
MAX_LENGTH = 128
CONFIGS = [("cached", 8), ("cached", 64), ("uncached", None)]
WORDS = (
    "the a of to in is was what who where when how why which capital city country river mountain paris france "
    "berlin germany rome italy london england cat dog animal sleeps runs eats food water big small red blue green "
    "man woman child person car bus train plane music song book reads question answer passage document"
).split()


def build_model(folder: Path) -> None:
    """A 4-layer, 256-wide random BERT with a word-level vocabulary: big enough for activations to dominate."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab_ids = {token: index for index, token in enumerate(vocab)}
    BertTokenizerFast(vocab=vocab_ids, model_max_length=MAX_LENGTH).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=MAX_LENGTH,
    )
    BertModel(config).save_pretrained(folder)


def make_batch() -> list[list[str]]:
    """Anchors and positives long enough that every pair is truncated to MAX_LENGTH tokens."""
    rng = random.Random(0)

    def text(length: int) -> str:
        # Each text repeats a few words of its own: uniform random words would give every pair the same score.
        return " ".join(rng.choices(rng.sample(WORDS, 3), k=length))

    return [[text(20) for _ in range(BATCH)], [text(150) for _ in range(BATCH)]]


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(model_dir: str, kind: str, mini_batch_size: int | None) -> dict[str, Any]:
    """One measurement in this (fresh) process; saves the gradient next to the model for the parent to compare."""
    import torch

    from rerank_lib import CrossEncoder
    from rerank_lib.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss

    torch.set_num_threads(2)
    torch.manual_seed(0)  # the scoring head is new: the same seed gives every child the same model
    model = CrossEncoder(model_dir, device="cpu", max_length=MAX_LENGTH)
    model.eval()  # no dropout, so every configuration computes the identical loss; gradients are still taken
    if kind == "cached":
        loss_fn = CachedMultipleNegativesRankingLoss(
            model, num_negatives=NUM_NEGATIVES, mini_batch_size=mini_batch_size
        )
    else:
        loss_fn = MultipleNegativesRankingLoss(model, num_negatives=NUM_NEGATIVES)
    inputs = make_batch()
    # Warm-up on two rows: allocates the gradients and the allocator's own structures outside the measurement.
    loss_fn([column[:2] for column in inputs]).backward()
    model.zero_grad(set_to_none=False)

    baseline = rss_bytes()
    peak = baseline
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    torch.manual_seed(1)
    start = time.perf_counter()
    loss = loss_fn(inputs)
    loss.backward()
    seconds = time.perf_counter() - start
    running = False
    sampler.join()
    peak = max(peak, rss_bytes())
    grad = torch.cat([p.grad.flatten().double() for p in model.parameters() if p.grad is not None])
    torch.save(grad, Path(model_dir).parent / f"grad-{kind}-{mini_batch_size}.pt")
    return {
        "loss": kind if kind == "uncached" else f"cached (mini_batch_size={mini_batch_size})",
        "mini_batch_size": mini_batch_size,
        "peak_rss_above_baseline_mib": round((peak - baseline) / 2**20, 1),
        "baseline_rss_mib": round(baseline / 2**20, 1),
        "loss_value": float(loss),
        "grad_norm": float(grad.norm()),
        "seconds_on_shared_cpus": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("MODEL_DIR", "KIND", "MINI_BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_dir, kind, mini_batch = args.child
        print(json.dumps(child(model_dir, kind, None if mini_batch == "none" else int(mini_batch))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "bert"
        build_model(model_dir)
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "TOKENIZERS_PARALLELISM": "false"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        results = []
        for kind, mini_batch_size in CONFIGS:
            command = [sys.executable, __file__, "--child", str(model_dir), kind, str(mini_batch_size).lower()]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
            print(results[-1])
        import torch

        reference = torch.load(Path(tmp) / "grad-uncached-None.pt")
        for (kind, mini_batch_size), result in zip(CONFIGS, results, strict=True):
            grad = torch.load(Path(tmp) / f"grad-{kind}-{mini_batch_size}.pt")
            result["grad_relative_difference_vs_uncached"] = float((grad - reference).norm() / reference.norm())

    by_name = {r["loss"]: r for r in results}
    small, large = by_name["cached (mini_batch_size=8)"], by_name["cached (mini_batch_size=64)"]
    uncached = by_name["uncached"]
    report = {
        "what": "Peak memory of one forward + backward of (Cached)MultipleNegativesRankingLoss on CPU",
        "method": __doc__.split("\n\n")[1].removeprefix("Method: ").replace("\n", " "),
        "model": "random BERT, 4 layers, hidden 256, 4 heads, intermediate 1024",
        "batch": {
            "anchors": BATCH,
            "num_negatives": NUM_NEGATIVES,
            "pairs_scored": BATCH * (1 + NUM_NEGATIVES),
            "tokens_per_pair": MAX_LENGTH,
        },
        "results": results,
        "peak_ratio_64_vs_8": round(large["peak_rss_above_baseline_mib"] / small["peak_rss_above_baseline_mib"], 2),
        "peak_ratio_uncached_vs_8": round(
            uncached["peak_rss_above_baseline_mib"] / small["peak_rss_above_baseline_mib"], 2
        ),
        "same_loss_value": len({round(r["loss_value"], 5) for r in results}) == 1,
        "note": "times are one step on two CPU cores shared with other jobs: compare memory, not speed",
        "environment": {
            "python": platform.python_version(),
            "torch": __import__("torch").__version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
