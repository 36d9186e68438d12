"""Held-out data: which splits training may read, and which queries of a BEIR source a dev split holds out.

A catalog entry's ``split`` rule assigns each query to a split by a hash of the seed and the query text
(:mod:`rerank_lib.data.splits`), so the same rule on the same source always holds out the same queries. That is
what keeps dev data out of training:

* a training dataset never trains on a split that an evaluator (``evaluate.suite`` or ``dev.suite``) reads, nor on
  a split named like a held-out one (``dev``, ``test``, ...);
* a training dataset and an evaluated dataset read from the same source must split it by the same rule, or one
  query could sit in the training part of one and the held-out part of the other;
* a ``beir`` evaluator with ``dataset:`` scores the queries of the entry's BEIR qrels that the entry's rule puts in
  the evaluated split: the claims its training part never holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rerank_lib.data.splits import assign_splits
from rerank_lib.errors import DataValidationError
from rerank_lib.retrieval.beir import load_beir
from tasks.catalog_schema import BeirSource, DatasetEntry, FileSource
from tasks.evaluate_config import BeirEvaluation, ClassificationEvaluation

HELD_OUT_NAMES = frozenset({"dev", "test", "validation", "valid", "val", "heldout", "held_out"})


def source_key(entry: DatasetEntry) -> tuple[Any, ...]:
    """What an entry reads, so two entries of the same file or BEIR qrels compare equal."""
    source = entry.source
    if isinstance(source, FileSource):
        paths = source.path if isinstance(source.path, dict) else {source.split: source.path}
        return ("file", tuple(sorted((split, os.path.normpath(path)) for split, path in paths.items())))
    if isinstance(source, BeirSource):
        return ("beir", os.path.normpath(source.folder), source.split)
    return ("hub", source.id, source.config, source.split, source.revision)


def evaluated_reads(
    suites: Iterable[dict[str, Any]], catalog: dict[str, DatasetEntry], thresholds: bool = True
) -> dict[Any, set[str]]:
    """``{dataset name or ("beir", folder, split): splits read}`` over the evaluators of the given suites.

    ``thresholds``: count the split a classification evaluator chooses its thresholds on (dev data, not reported).
    """
    reads: dict[Any, set[str]] = {}
    for suite in suites:
        for spec in suite.values():
            if isinstance(spec, BeirEvaluation) and spec.folder is not None:
                reads.setdefault(("beir", os.path.normpath(spec.folder), spec.split), set()).add(spec.split)
                continue
            splits = reads.setdefault(spec.dataset, set())
            splits.add(spec.split)
            entry = catalog.get(spec.dataset)
            threshold = getattr(spec, "threshold_split", None) if isinstance(spec, ClassificationEvaluation) else None
            if thresholds and entry is not None and threshold in entry.split_names():
                splits.add(threshold)
    return reads


def check_training_held_out(
    train_splits: dict[str, str], catalog: dict[str, DatasetEntry], reads: dict[Any, set[str]]
) -> None:
    """Training reads no held-out split, directly or through another entry of the same source."""
    for name, split in train_splits.items():
        key = f"train.datasets.{name}.split"
        if split in HELD_OUT_NAMES:
            raise ValueError(f"{key}: {split!r} names a held-out split; training reads the training part only")
        entry = catalog[name]
        for read, splits in reads.items():
            if isinstance(read, tuple):  # a BEIR folder read directly
                if read == source_key(entry):
                    raise ValueError(
                        f"{key}: an evaluator scores every query of {read[1]} qrels {read[2]!r}, which {name!r} "
                        "trains on; evaluate its held-out queries with `dataset:` instead of `folder:`"
                    )
                continue
            other = catalog.get(read)
            if other is None or source_key(other) != source_key(entry):
                continue
            if other.split != entry.split:
                raise ValueError(
                    f"train.datasets.{name} and the evaluated dataset {read!r} read the same source but split it "
                    "differently; give both the same `split` rule (seed, group_by, fractions), so that no query is "
                    "in the training part of one and the evaluated part of the other"
                )
            if split in splits:
                raise ValueError(f"{key}: {split!r} is evaluated (dataset {read!r}); training never sees it")


def check_beir_dataset(key: str, spec: BeirEvaluation, catalog: dict[str, DatasetEntry]) -> None:
    """A ``beir`` evaluator's ``dataset`` is a BEIR-sourced entry whose split rule, by query, has the split."""
    entry = catalog.get(str(spec.dataset))
    if entry is None:
        raise ValueError(f"{key}.dataset {spec.dataset!r} is not in prepare.datasets")
    if not isinstance(entry.source, BeirSource):
        raise ValueError(
            f"{key}.dataset {spec.dataset!r} has a {entry.source.kind} source; a beir evaluator needs BEIR"
        )
    if entry.split is None or entry.split.group_by != "query":
        raise ValueError(
            f"{key}.dataset {spec.dataset!r} needs a `split` rule grouped by query to hold out queries of its qrels"
        )
    if spec.split not in entry.split.fractions:
        raise ValueError(
            f"{key}.split {spec.split!r}: the split rule of {spec.dataset!r} has {sorted(entry.split.fractions)}"
        )


def beir_folder(spec: BeirEvaluation, catalog: dict[str, DatasetEntry]) -> str:
    """The BEIR folder an evaluator reads: its own, or its catalog entry's."""
    if spec.folder is not None:
        return spec.folder
    source = catalog[str(spec.dataset)].source
    assert isinstance(source, BeirSource)
    return source.folder


def held_out_query_ids(entry: DatasetEntry, split: str, root: Path) -> tuple[str, list[str]]:
    """The qrels split an entry reads and the ids of its judged queries that the entry's rule puts in ``split``."""
    source = entry.source
    if not isinstance(source, BeirSource) or entry.split is None:
        raise DataValidationError("held-out queries need a BEIR source and a split rule")
    _, queries, qrels = load_beir(Path(root) / source.folder, source.split)
    ids = [query_id for query_id in qrels if query_id in queries]
    names = assign_splits([queries[query_id] for query_id in ids], entry.split.fractions, entry.split.seed)
    return source.split, [query_id for query_id, name in zip(ids, names, strict=True) if name == split]
