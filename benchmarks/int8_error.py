"""How far dynamic int8 scores move from fp32: the plain int8 graph vs the first-token-split one rerank_lib exports.

For one saved cross-encoder, on WikiQA *train* questions (never the test split), it scores every candidate of each
question with ONNX Runtime fp32, the plain dynamically quantized graph (ONNX Runtime's ``quantize_dynamic`` on the
fp32 export, as rerank_lib did before) and rerank_lib's int8 export (``first_token_split``), and reports per variant:
mean absolute score difference to fp32 (logits), Spearman correlation, mean per-question |NDCG@10 change|, the
NDCG@10 difference of the means, and pairs/second.

Run: ``.venv/bin/python benchmarks/int8_error.py --model artifacts/trained/model`` (any saved CrossEncoder folder;
it is copied, the folder itself is never written). Writes ``benchmarks/results/int8_error.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

TRAIN_FILE = ROOT / "data" / "raw" / "wikiqa" / "WikiQA-train.tsv"
RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved CrossEncoder folder (copied, not changed)")
    parser.add_argument("--questions", type=int, default=300, help="first N WikiQA train questions (default 300)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per variant; the fastest counts")
    parser.add_argument("--output", type=Path, default=RESULTS / "int8_error", help="results path without suffix")
    return parser.parse_args(argv)


def train_questions(limit: int) -> list[tuple[str, list[str], np.ndarray]]:
    """(question, candidates, labels) for the first ``limit`` train questions with a right and a wrong sentence."""
    from speed import wikiqa_pairs

    frame = wikiqa_pairs(TRAIN_FILE)
    questions = []
    for question, group in frame.groupby("question", sort=False):
        labels = group["label"].to_numpy()
        if 0 < labels.sum() < len(labels):
            questions.append((question, group["sentence"].tolist(), labels))
        if len(questions) == limit:
            break
    return questions


def ndcg_at_10(scores: np.ndarray, labels: np.ndarray) -> float:
    """NDCG@10 of the candidates ranked by ``scores`` (ties keep file order)."""
    from rerank_lib.evaluation.metrics import ndcg_at_k

    return ndcg_at_k(labels[np.argsort(-scores, kind="stable")], 10)


def copy_model(source: Path, target: Path) -> Path:
    """Copy the model without any exports it carries, so every variant is exported fresh by this run's code."""
    return Path(shutil.copytree(source, target, ignore=shutil.ignore_patterns("onnx", "openvino")))


def plain_int8_folder(model_dir: Path, work: Path) -> Path:
    """A copy whose ``model_qint8.onnx`` is ``quantize_dynamic`` applied to the plain fp32 export (no split)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rerank_lib import CrossEncoder
    from rerank_lib.backends.onnx import export_onnx_model

    folder = copy_model(model_dir, work / "plain")
    fp32 = export_onnx_model(CrossEncoder(folder, device="cpu"), folder)
    quantize_dynamic(fp32, fp32.parent / "model_qint8.onnx", weight_type=QuantType.QInt8, per_channel=True)
    return folder


def score(model: Any, pairs: list[tuple[str, str]], args: argparse.Namespace) -> tuple[np.ndarray, float]:
    import torch

    best, out = float("inf"), None
    for _ in range(args.repeats):
        started = time.perf_counter()
        out = model.predict(
            pairs, batch_size=args.batch_size, activation_fn=torch.nn.Identity(), show_progress_bar=False
        )
        best = min(best, time.perf_counter() - started)
    return np.asarray(out, dtype=float), len(pairs) / best


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"--model {args.model}: no config.json there; pass a saved CrossEncoder folder.")
    from scipy.stats import spearmanr

    from rerank_lib import CrossEncoder

    questions = train_questions(args.questions)
    pairs = [(question, candidate) for question, candidates, _ in questions for candidate in candidates]
    print(f"{len(questions)} WikiQA train questions, {len(pairs)} pairs", flush=True)
    options = {"device": "cpu", "max_length": args.max_length, "num_threads": args.threads, "backend": "onnx"}
    with tempfile.TemporaryDirectory(prefix="int8-error-") as tmp:
        work = Path(tmp)
        split_dir = copy_model(args.model, work / "split")
        variants = {
            "onnx fp32": CrossEncoder(split_dir, **options),
            "onnx int8, plain graph": CrossEncoder(plain_int8_folder(args.model, work), quantize="int8", **options),
            "onnx int8, first-token split (rerank_lib)": CrossEncoder(split_dir, quantize="int8", **options),
        }
        results: dict[str, dict[str, float]] = {}
        scores = {}
        for name, model in variants.items():
            scores[name], speed = score(model, pairs, args)
            results[name] = {"pairs_per_second": speed}
            print(f"{name}: {speed:.1f} pairs/s", flush=True)
    reference = scores["onnx fp32"]
    ends = np.cumsum([len(candidates) for _, candidates, _ in questions])
    spans = [(end - len(candidates), end) for end, (_, candidates, _) in zip(ends, questions, strict=True)]
    per_question = {
        name: np.array([ndcg_at_10(values[a:b], q[2]) for (a, b), q in zip(spans, questions, strict=True)])
        for name, values in scores.items()
    }
    for name, values in scores.items():
        results[name].update(
            mean_abs_score_diff=float(np.abs(values - reference).mean()),
            spearman=float(spearmanr(values, reference).statistic),
            mean_abs_ndcg10_change=float(np.abs(per_question[name] - per_question["onnx fp32"]).mean()),
            ndcg10=float(per_question[name].mean()),
            ndcg10_minus_fp32=float(per_question[name].mean() - per_question["onnx fp32"].mean()),
        )
    report = {
        "date": dt.date.today().isoformat(),
        "model": str(args.model),
        "questions": len(questions),
        "pairs": len(pairs),
        "score_std_fp32": float(reference.std()),
        "args": {key: str(value) for key, value in vars(args).items()},
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# int8 vs fp32 scores ({report['date']})",
        "",
        f"Model `{args.model}`; {len(questions)} WikiQA train questions, {len(pairs)} pairs, batch {args.batch_size}, "
        f"max length {args.max_length}, {args.threads} threads; fp32 logit std {report['score_std_fp32']:.3f}.",
        "",
        "| variant | pairs/s | mean abs score diff | Spearman | mean abs NDCG@10 change | NDCG@10 - fp32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['pairs_per_second']:.1f} | {row['mean_abs_score_diff']:.4f} | {row['spearman']:.4f} | "
            f"{row['mean_abs_ndcg10_change']:.4f} | {row['ndcg10_minus_fp32']:+.4f} |"
        )
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
