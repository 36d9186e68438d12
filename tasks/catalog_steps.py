"""The build steps of a catalog entry, in the order :func:`tasks.catalog.build_dataset` applies them:
relabel (``labels``), join into passages (``passages``), convert to the format and mine negatives (``mining``),
add distillation targets (``teacher``), split (``split``), keep the format's columns, and check them for the loss
(``validation``). Each takes the entry's tables and returns new ones, so a step can be tested alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from rerank_lib.data.checks import label_values
from rerank_lib.data.convert import convert, positive_pairs
from rerank_lib.data.formats import (
    LABEL,
    LABELS,
    LISTWISE_COLUMNS,
    PAIR_COLUMNS,
    RERANKING_COLUMNS,
    TRIPLET_COLUMNS,
    Format,
    detect_format,
    graded_to_binary,
    scale_labels,
)
from rerank_lib.data.hard_negatives import mine_hard_negatives
from rerank_lib.data.list_negatives import add_negatives_to_lists
from rerank_lib.data.passages import join_consecutive_sentences
from rerank_lib.data.splits import split_frame
from rerank_lib.data.tables import (
    as_list,
)
from rerank_lib.data.teacher_labels import add_teacher_scores
from rerank_lib.data.validation import validate_for_loss
from rerank_lib.errors import ConfigError, DataValidationError
from tasks.catalog_schema import MINED_FORMATS, DatasetEntry, MiningConfig, TeacherConfig

logger = logging.getLogger(__name__)

# Under the project root: what prepare can reuse from an earlier run (see tasks.layout.Layout).
SCORE_CACHE = ".cache/scores"
EMBEDDING_CACHE = ".cache/embeddings"


def relabel(name: str, entry: DatasetEntry, table: pd.DataFrame) -> pd.DataFrame:
    rules = entry.labels
    if rules is None:
        return _numeric_labels(name, table)
    column = LABEL if LABEL in table.columns else LABELS if LABELS in table.columns else None
    if column is None:
        raise DataValidationError(f"dataset {name!r}: `labels` rules need a label or labels column.")
    if rules.map is not None:
        table = _map_labels(name, table, column, rules.map)
    table = _numeric_labels(name, table)
    if rules.scale is not None:
        if column == LABELS:
            raise DataValidationError(f"dataset {name!r}: `labels.scale` applies to a label column, not lists.")
        table = scale_labels(table, *rules.scale, column=column, dataset=name)
    if rules.binary_threshold is not None:
        table = graded_to_binary(table, rules.binary_threshold, column=column, dataset=name)
    return table


def _map_labels(name: str, table: pd.DataFrame, column: str, mapping: dict[str, float]) -> pd.DataFrame:
    mapped = []
    for row, value in enumerate(table[column].tolist()):
        items = as_list(value)
        values = items if items is not None else [value]
        unknown = [item for item in values if str(item) not in mapping]
        if unknown:
            raise DataValidationError(
                f"dataset {name!r}: column {column!r}, row {row}: label {unknown[0]!r} is not in labels.map "
                f"({sorted(mapping)})."
            )
        numbers = [float(mapping[str(item)]) for item in values]
        mapped.append(numbers if items is not None else numbers[0])
    out = table.copy()
    out[column] = mapped
    return out


def _numeric_labels(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """Delimited files are read as text: parse a scalar label column as numbers, naming the row that is not one."""
    if LABEL not in table.columns:
        return table
    out = table.copy()
    out[LABEL] = label_values(table, LABEL, name)
    return out


def to_format(
    name: str,
    entry: DatasetEntry,
    table: pd.DataFrame,
    corpus: dict[str, str] | None,
    root: Path,
    answerable: set[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """``answerable``: for joined passages, the queries whose sentences hold a positive and a negative label."""
    group_by = "query_id" if "query_id" in table.columns else None
    if entry.mining is None or entry.mining.keep_labelled:
        source_format = detect_format(table)
        if entry.format == Format.NTUPLES and source_format != Format.NTUPLES:
            raise ConfigError(
                f"datasets.{name}.format: n-tuples cannot be made from {source_format.value} without choosing "
                "negatives; add a `mining` section."
            )
        converted = convert(table, entry.format, group_by=group_by, keep_incomplete=entry.keep_incomplete, dataset=name)
        if entry.format == Format.LISTWISE and entry.require_positive_and_negative:
            if answerable is not None:  # a page whose passages all hold an answer keeps its list: mining adds negatives
                converted = converted[converted["query"].isin(answerable)].reset_index(drop=True)
            if answerable is None or entry.mining is None:
                converted = lists_with_both_labels(converted)
        if entry.mining is None:
            return converted, None
        return _add_mined_negatives(name, entry.mining, converted, _mining_corpus(table, corpus), root)
    mining = entry.mining
    documents = _mining_corpus(table, corpus)
    positives = positive_pairs(table.drop(columns=[c for c in ("query_id", "doc_id") if c in table.columns]), name)
    model = _resolve_model(mining.model, root) if mining.model else None
    cross_encoder = None
    if mining.cross_encoder:
        from rerank_lib import CrossEncoder

        cross_encoder = CrossEncoder(_resolve_model(mining.cross_encoder, root))
    mined = mine_hard_negatives(
        positives,
        model,
        corpus=documents,
        output_format=MINED_FORMATS[entry.format],
        list_labels=mining.list_labels,
        include_scores=mining.include_scores,
        cross_encoder=cross_encoder,
        dataset_name=name,
        **_miner_options(mining, root),
    )
    return mined, mined.attrs.get("mining")


def _miner_options(mining: MiningConfig, root: Path) -> dict[str, Any]:
    """The options both mining routes pass to the miner: window, margin, sampling and embedding settings."""
    return {
        "method": mining.method,
        "num_negatives": mining.num_negatives,
        "range_min": mining.range_min,
        "range_max": mining.range_max,
        "margin": mining.margin,
        "margin_type": mining.margin_type,
        "sampling": mining.sampling,
        "seed": mining.seed,
        "batch_size": mining.batch_size,
        "max_length": mining.max_length,
        "cache_dir": root / (mining.cache_dir or EMBEDDING_CACHE),
    }


def _mining_corpus(table: pd.DataFrame, corpus: dict[str, str] | None) -> list[str]:
    """The documents to mine from: the BEIR corpus, plus every document of a pairs table."""
    documents = list(corpus.values()) if corpus is not None else []
    if detect_format(table) == Format.PAIRS:
        documents += [text for text in table["document"].tolist() if isinstance(text, str)]
    return documents


def _add_mined_negatives(
    name: str, mining: MiningConfig, lists: pd.DataFrame, documents: list[str], root: Path
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """``mining.keep_labelled``: the labelled lists, each with mined negatives appended."""
    extended = add_negatives_to_lists(
        lists,
        _resolve_model(mining.model, root) if mining.model else None,
        corpus=documents,
        dataset_name=name,
        **_miner_options(mining, root),
    )
    return extended, extended.attrs.get("mining")


def with_teacher_scores(name: str, teacher: TeacherConfig, table: pd.DataFrame, root: Path) -> pd.DataFrame:
    """``teacher``: each label plus ``weight`` times the teacher's score of its (query, document) pair.

    A bi-encoder or hybrid teacher's scores are kept in the project's score cache: preparing the same data again
    (a changed mining or split setting) reads them back.
    """
    model = _resolve_model(teacher.model, root)
    if teacher.scorer == "cross-encoder":
        from rerank_lib import CrossEncoder

        scorer: Any = CrossEncoder(model, max_length=teacher.max_length)
    else:
        from rerank_lib.bi_encoder import BiEncoderScorer
        from rerank_lib.retrieval.hybrid_scorer import DEFAULT_BM25_SHARE, HybridScorer
        from rerank_lib.score_store import DiskCachedScorer, ScoreStore

        bi_encoder = BiEncoderScorer(model, max_length=teacher.max_length)
        identity = f"bi-encoder:{bi_encoder.encoder.fingerprint()}:{bi_encoder.encoder.max_length}"
        scorer = bi_encoder
        if teacher.scorer == "hybrid":
            share = DEFAULT_BM25_SHARE if teacher.bm25_share is None else teacher.bm25_share
            scorer = HybridScorer(bi_encoder.encoder, bm25_share=share, max_length=teacher.max_length)
            identity = f"hybrid:{share}:{identity}"
        scorer = DiskCachedScorer(scorer, identity, ScoreStore(root / SCORE_CACHE))
    logger.info("Adding %s teacher scores (weight %s) to %s's labels", teacher.model, teacher.weight, name)
    return add_teacher_scores(table, scorer, teacher.weight, batch_size=teacher.batch_size, dataset_name=name)


def queries_with_both_labels(table: pd.DataFrame) -> set[str]:
    """Queries of a pairs table with at least one positive and one zero label among their documents."""
    labels = table.groupby("query", sort=False)["label"]
    both = (labels.max() > 0) & (labels.min() <= 0)
    return set(both[both].index)


def lists_with_both_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep listwise rows whose grades include at least one positive and one zero."""
    keep = [any(g > 0 for g in grades) and any(g <= 0 for g in grades) for grades in frame["labels"]]
    return frame[keep].reset_index(drop=True)


def _resolve_model(reference: str, root: Path) -> str:
    from tasks.base_model import resolve_base_model

    resolved = resolve_base_model(reference)
    candidate = root / resolved
    return str(candidate) if not Path(resolved).is_absolute() and candidate.exists() else resolved


def final_columns(entry: DatasetEntry, table: pd.DataFrame) -> pd.DataFrame:
    """Only the columns the format defines (plus mined scores), in the order the losses read them."""
    fmt = entry.format
    if fmt == Format.PAIRS:
        wanted = [c for c in PAIR_COLUMNS if c in table.columns]
    elif fmt == Format.TRIPLETS:
        wanted = list(TRIPLET_COLUMNS)
    elif fmt == Format.LISTWISE:
        wanted = list(LISTWISE_COLUMNS)
    elif fmt == Format.RERANKING:
        wanted = list(RERANKING_COLUMNS)
    else:
        wanted = [c for c in table.columns if c in ("query", "positive") or c.startswith("negative_")]
    wanted += [c for c in ("score", "scores") if c in table.columns and c not in wanted]
    return table[wanted].reset_index(drop=True)


def validate_outputs(
    name: str, entry: DatasetEntry, outputs: dict[str, pd.DataFrame], root: Path, tokenizer: Any
) -> dict[str, dict[str, int]]:
    rules = entry.validation
    if rules is None:
        return {}
    if tokenizer is None and rules.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(_resolve_model(rules.tokenizer, root))
    reports = {}
    for split, table in outputs.items():
        report = validate_for_loss(
            table,
            rules.loss,
            dataset=f"{name}/{split}",
            num_labels=rules.num_labels,
            max_length=rules.max_length,
            tokenizer=tokenizer,
        )
        reports[split] = report.warnings
    return reports


def join_passages(
    name: str, entry: DatasetEntry, tables: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], dict[str, set[str]]]:
    """``passages``: each query's consecutive sentences joined into passages; also the queries that had both labels
    among their sentences (with ``require_positive_and_negative``, the lists are judged on the sentences)."""
    if entry.passages is None:
        return tables, {}
    rules = entry.passages
    answerable = {}
    if entry.require_positive_and_negative:
        answerable = {split: queries_with_both_labels(table) for split, table in tables.items()}
    joined = {
        split: join_consecutive_sentences(table, rules.size, dataset=name, separator=rules.separator)
        for split, table in tables.items()
    }
    return joined, answerable


def convert_and_mine(
    name: str,
    entry: DatasetEntry,
    tables: dict[str, pd.DataFrame],
    corpus: dict[str, str] | None,
    root: Path,
    answerable: dict[str, set[str]],
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Each split in the entry's format (mining negatives where asked); the miner's statistics per split."""
    converted, stats = {}, {}
    for split, table in tables.items():
        converted[split], mined = to_format(name, entry, table, corpus, root, answerable.get(split))
        if mined:
            stats[split] = mined
    return converted, stats


def split_and_select(name: str, entry: DatasetEntry, converted: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``split``: the seeded, grouped split of a single table; then only the format's columns, no split empty."""
    if entry.split is not None:
        (only,) = converted.values()
        converted = split_frame(only, entry.split.fractions, entry.split.seed, entry.split.group_by, name)
    outputs = {split: final_columns(entry, table) for split, table in converted.items()}
    for split, table in outputs.items():
        if len(table) == 0:
            raise DataValidationError(f"dataset {name!r}: split {split!r} is empty after preparation.")
    return outputs
