"""A small synthetic collection ("ACME"), in the four shapes a team usually brings, for the own-data tests.

Every query asks about one made-up product; its relevant passage states a fact about that product, the others are
about other products. Nothing here comes from the demo data.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

COLOURS = ["red", "blue", "green"]
PLACES = ["paris", "berlin", "rome", "london"]
THINGS = ["car", "bus", "train", "plane", "book", "song"]


@dataclass(frozen=True)
class Collection:
    folder: Path
    pairs_csv: Path  # query,passage,label
    lists_jsonl: Path  # {query, positive: [...], negative: [...]}
    triplets_tsv: Path  # query<TAB>positive<TAB>negative
    beir: Path  # corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv


def products(count: int, seed: int) -> list[tuple[str, str, str]]:
    """(name, question, fact) per made-up product."""
    rng = random.Random(seed)
    items = []
    for index in range(count):
        name = f"zx{index}{rng.choice('abcdefgh')}"
        colour, place, thing = rng.choice(COLOURS), rng.choice(PLACES), rng.choice(THINGS)
        items.append((name, f"what is the {name} {thing}", f"the {name} is a {colour} {thing} made in {place}"))
    return items


def write_collection(folder: Path, queries: int = 40, seed: int = 0) -> Collection:
    """Write the collection into ``folder``: the same products in each shape."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    items = products(queries, seed)
    facts = [fact for _, _, fact in items]

    def others(index: int, k: int) -> list[str]:
        return rng.sample([fact for i, fact in enumerate(facts) if i != index], k)

    pairs = ["query,passage,label"]
    lists, triplets = [], []
    for index, (_, question, fact) in enumerate(items):
        negatives = others(index, 3)
        pairs += [f"{question},{fact},1", *(f"{question},{negative},0" for negative in negatives)]
        lists.append({"query": question, "positive": [fact], "negative": negatives})
        triplets.append(f"{question}\t{fact}\t{negatives[0]}")
    (folder / "pairs.csv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    (folder / "lists.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lists), encoding="utf-8")
    (folder / "triplets.tsv").write_text("query\tpositive\tnegative\n" + "\n".join(triplets) + "\n", encoding="utf-8")
    beir = folder / "beir"
    (beir / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": f"d{i}", "title": "", "text": fact} for i, fact in enumerate(facts)]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus), encoding="utf-8")
    questions = [{"_id": f"q{i}", "text": question} for i, (_, question, _) in enumerate(items)]
    (beir / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in questions), encoding="utf-8")
    cut = int(len(items) * 0.75)
    for split, ids in (("train", range(cut)), ("test", range(cut, len(items)))):
        lines = ["query-id\tcorpus-id\tscore", *(f"q{i}\td{i}\t1" for i in ids)]
        (beir / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Collection(folder, folder / "pairs.csv", folder / "lists.jsonl", folder / "triplets.tsv", beir)


def acme_profile(collection: Collection, base_model: Path) -> dict:
    """A profile that names only the ACME collection: it replaces the demo's catalog, training mix and suite."""
    split = {"seed": 1, "group_by": "query", "fractions": {"train": 0.6, "dev": 0.2, "test": 0.2}}
    return {
        "replace": ["prepare.datasets", "train.datasets", "train.evaluation", "evaluate.suite", "dev", "tune"],
        "prepare": {
            "datasets": {
                "acme-pairs": {"source": {"kind": "file", "path": str(collection.pairs_csv)}, "format": "pairs",
                               "columns": {"document": "passage"}, "split": split},
                "acme-lists": {"source": {"kind": "file", "path": str(collection.lists_jsonl)}, "format": "reranking",
                               "split": split},
                "acme-triplets": {"source": {"kind": "file", "path": str(collection.triplets_tsv), "split": "train"},
                                  "format": "triplets"},
                "acme-beir": {"source": {"kind": "beir", "folder": str(collection.beir), "split": "train"},
                              "format": "n-tuples", "mining": {"method": "bm25", "num_negatives": 2, "range_max": 10}},
            }
        },
        "train": {
            "base_model": str(base_model),
            "datasets": {
                "acme-pairs": {"loss": "BinaryCrossEntropyLoss"},
                "acme-triplets": {"loss": "MultipleNegativesRankingLoss"},
                "acme-beir": {"loss": "MultipleNegativesRankingLoss"},
            },
            "epochs": 1,
            "max_length": 32,
            "batch_size": 8,
            "save_steps": 50,
            "evaluation": {"steps": None},
        },
        "evaluate": {
            "bi_encoder": str(base_model),
            "batch_size": 32,
            "suite": {
                "acme_pairs_test": {"kind": "classification", "dataset": "acme-pairs", "title": "ACME pairs"},
                "acme_lists_test": {"kind": "reranking", "dataset": "acme-lists", "first_stage": "bm25"},
                "acme_beir": {"kind": "beir", "folder": str(collection.beir), "split": "test", "top_k": 5},
            },
        },
        "dev": {
            "bi_encoder": str(base_model),
            "batch_size": 32,
            "suite": {"acme_lists_dev": {"kind": "reranking", "dataset": "acme-lists", "split": "dev",
                                         "first_stage": "bm25"}},
            "objective": {"metrics": {"acme_lists_dev_ndcg@10": 1.0}},
        },
        "package": {"shares": [0.0, 0.5]},
        "tune": {
            "study": "acme", "trials": 6, "eval_steps": 2, "eval_max_queries": 4, "heartbeat_seconds": 1,
            "sampler": {"kind": "tpe", "seed": 0, "startup_trials": 2},
            "pruner": {"kind": "median", "startup_trials": 1, "warmup_steps": 0},
            "space": {
                "train.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
                "route": {"type": "variants", "variants": {"full": {}, "decay": {"train.layerwise_lr_decay": 0.5}}},
            },
        },
        "card": {"model_name": "ACME reranker"},
        "register": {"registered_model": "acme-reranker"},
        "promote": {"metric": "acme_lists_test_ndcg@10", "guards": {"acme_pairs_test_average_precision": 0.5}},
    }  # fmt: skip
