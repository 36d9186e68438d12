"""What ships as an MLflow pyfunc model: a DataFrame of (query, passage[, first_stage_score]) in, scores out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from rerank_lib.package import RerankPackage

MODEL_ARTIFACT = "cross_encoder"
INPUT_COLUMNS = ("query", "passage")
FIRST_STAGE_COLUMN = "first_stage_score"  # optional: a package mixes this score in instead of computing its own

# The inference engine, logged as the pyfunc's model_config: a server may override these keys at load time
# (`mlflow.pyfunc.load_model(uri, model_config=...)`, or SERVING_MODEL_CONFIG for `mlflow models serve`).
INFERENCE_OPTIONS: dict[str, Any] = {"backend": "torch", "quantize": None, "precision": "fp32", "num_threads": None}


def inference_options(model_config: dict[str, Any] | None) -> dict[str, Any]:
    """The logged defaults with the load-time overrides applied; only the keys of ``INFERENCE_OPTIONS``."""
    return {key: (model_config or {}).get(key, default) for key, default in INFERENCE_OPTIONS.items()}


def check_input(model_input: pd.DataFrame) -> list[tuple[str, str]]:
    """The (query, passage) pairs, or an MLflow "invalid parameter" error (a 400 from a scoring server)."""
    missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
    if missing:
        raise MlflowException.invalid_parameter_value(
            f"Input lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}."
        )
    for column in INPUT_COLUMNS:
        empty = [int(i) for i in np.flatnonzero(model_input[column].isna().to_numpy())]
        if empty:
            raise MlflowException.invalid_parameter_value(
                f"Column '{column}' is empty (null) in row(s) {empty[:10]}; every row needs a query and a passage."
            )
    return list(zip(model_input["query"].astype(str), model_input["passage"].astype(str), strict=True))


class CrossEncoderPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the shipped folder from the model's artifacts and scores DataFrame rows as it was evaluated.

    A rerank package (:mod:`rerank_lib.package`) mixes its first stage into the cross-encoder's score over each
    query's rows of the frame; an optional ``first_stage_score`` column (the team's retriever score) is used instead
    of the package's own first stage. A plain cross-encoder scores each row alone and ignores that column.
    """

    def load_context(self, context: Any) -> None:
        from rerank_lib import load_reranker

        options = inference_options(getattr(context, "model_config", None))
        self.model = load_reranker(context.artifacts[MODEL_ARTIFACT], device="cpu", **options)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        pairs = check_input(model_input)
        given = model_input.get(FIRST_STAGE_COLUMN)
        if given is None or given.isna().all() or not isinstance(self.model, RerankPackage):
            return np.asarray(self.model.predict(pairs, show_progress_bar=False), dtype=np.float32)
        if given.isna().any():
            raise MlflowException.invalid_parameter_value(
                f"{FIRST_STAGE_COLUMN} must hold a score on every row, or on none."
            )
        scores = self.model.predict(pairs, show_progress_bar=False, first_stage_scores=given.astype(float).tolist())
        return np.asarray(scores, dtype=np.float32)
