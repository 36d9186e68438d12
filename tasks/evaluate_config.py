"""The evaluation suite of params.yaml (``evaluate.suite``): named evaluators, each of one kind.

Every metric is named ``<suite name>_<metric>`` in metrics.json, MLflow, DVC metrics, the model card and the
details files, so a team's own sets keep their own names everywhere. The kinds, and the data each reads:

* ``reranking``: a prepared ``reranking`` dataset (query, positive list, negative list) or ``listwise`` one
  (query, documents, labels or grades). The model ranks each query's candidates; ``first_stage`` is the ranking it
  is compared with (``base_*`` metrics): ``bm25`` or ``bi-encoder`` over the same candidates, ``file`` (listwise
  data only: the documents in the order the file lists them, e.g. a retriever's run) or ``none``.
* ``classification``: a prepared ``pairs`` dataset with labels 0/1: accuracy, F1, precision, recall, average
  precision. Thresholds are chosen on ``threshold_split`` when the dataset has that split, else on the
  evaluated split itself (the report says which).
* ``correlation``: a prepared ``pairs`` dataset with graded labels: Pearson and Spearman correlation.
* ``beir``: a local BEIR folder (corpus, queries, ``qrels/<split>.tsv``): BM25's top ``top_k`` reranked. Instead of
  ``folder``, ``dataset`` names a catalog entry with a BEIR source and a ``split`` rule: the queries of the entry's
  qrels that its rule puts in ``split`` (e.g. ``dev``) are evaluated, the held-out queries its training part never
  holds.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from tasks.config_base import StageConfig

SUITE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
CLASSIFICATION_METRICS = ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall")
CORRELATION_METRICS = ("pearson", "spearman")


class _Evaluation(StageConfig):
    """What every evaluator of the suite shares: how the card names its data."""

    title: str | None = None  # the dataset's name on the model card (default: the catalog dataset or the folder)
    hub_id: str | None = None  # the dataset's Hugging Face Hub id, when it has one (the card's model-index)


class RerankingEvaluation(_Evaluation):
    kind: Literal["reranking"]
    dataset: str
    split: str = "test"
    first_stage: Literal["bm25", "bi-encoder", "file", "none"] = "bm25"


class ClassificationEvaluation(_Evaluation):
    kind: Literal["classification"]
    dataset: str
    split: str = "test"
    threshold_split: str | None = "dev"  # thresholds chosen here when the dataset has this split


class CorrelationEvaluation(_Evaluation):
    kind: Literal["correlation"]
    dataset: str
    split: str = "test"


class BeirEvaluation(_Evaluation):
    kind: Literal["beir"]
    folder: str | None = None  # a BEIR folder and its qrels split ...
    dataset: str | None = None  # ... or a catalog entry's BEIR source, held-out part `split` of its split rule
    split: str = "test"
    top_k: int = Field(default=100, gt=0)  # BM25 candidates reranked per query
    first_stage: Literal["bm25"] = "bm25"

    @model_validator(mode="after")
    def _folder_or_dataset(self) -> BeirEvaluation:
        if (self.folder is None) == (self.dataset is None):
            raise ValueError("a beir evaluator reads either `folder` (a BEIR folder) or `dataset` (a catalog entry)")
        return self


EvaluatorSpec = Annotated[
    RerankingEvaluation | ClassificationEvaluation | CorrelationEvaluation | BeirEvaluation,
    Field(discriminator="kind"),
]


class EvaluateConfig(StageConfig):
    """The evaluate stage: the suite, and settings shared by its evaluators."""

    suite: dict[str, EvaluatorSpec]
    batch_size: int = Field(default=64, gt=0)
    at_k: int = Field(default=10, gt=0)  # cut-off of MRR@k and NDCG@k
    # Evaluate only the first N queries (reranking, beir) or pairs (classification, correlation): quick runs.
    max_queries: int | None = Field(default=None, gt=0)
    # A zero-shot bi-encoder (a sentence-embedding model): the `bi-encoder` first stage and a baseline beside every
    # evaluator. null: no bi-encoder baseline.
    bi_encoder: str | None = None
    # The engine that scores the trained model. auto: the fastest fp32 engine here whose scores stay within
    # backend_tolerance of torch's (tasks/evaluate_backend.py); or name one (bf16 and int8 only when named).
    backend: Literal["auto", "torch", "onnx", "openvino"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    quantize: Literal["int8"] | None = None
    backend_tolerance: float = Field(default=1e-4, gt=0)
    backend_auto_min_pairs: int = Field(default=20_000, ge=0)  # fewer pairs: torch, no export

    @field_validator("suite")
    @classmethod
    def _names(cls, value: dict[str, EvaluatorSpec]) -> dict[str, EvaluatorSpec]:
        if not value:
            raise ValueError("the suite needs at least one evaluator")
        for name in value:
            if not SUITE_NAME.match(name):
                raise ValueError(f"evaluator name {name!r} must start with a letter and hold letters, digits and _")
        return value

    def metric_names(self) -> dict[str, list[str]]:
        """Each evaluator's metric keys as they appear in metrics.json (``<name>_<metric>``)."""
        ranking = ["map", f"mrr@{self.at_k}", f"ndcg@{self.at_k}"]
        by_kind = {
            "reranking": ranking,
            "beir": ranking,
            "classification": [*CLASSIFICATION_METRICS, "average_precision"],
            "correlation": list(CORRELATION_METRICS),
        }
        return {name: [f"{name}_{metric}" for metric in by_kind[spec.kind]] for name, spec in self.suite.items()}

    def primary_metric(self, name: str) -> str:
        """The metric an evaluator is judged by: NDCG@k, average precision or Spearman."""
        kind = self.suite[name].kind
        metric = {"classification": "average_precision", "correlation": "spearman"}.get(kind, f"ndcg@{self.at_k}")
        return f"{name}_{metric}"
