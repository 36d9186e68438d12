"""What ships as an MLflow pyfunc model: a DataFrame of (query, passage[, first_stage_score]) in, scores out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from rerank_lib.package import RerankPackage

MODEL_ARTIFACT = "cross_encoder"
INPUT_COLUMNS = ("query", "passage")
FIRST_STAGE_COLUMN = "first_stage_score"  # optional: a package mixes this score in instead of computing its own


class CrossEncoderPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the shipped folder from the model's artifacts and scores DataFrame rows as it was evaluated.

    A rerank package (:mod:`rerank_lib.package`) mixes its first stage into the cross-encoder's score over each
    query's rows of the frame; an optional ``first_stage_score`` column (the team's retriever score) is used instead
    of the package's own first stage. A plain cross-encoder scores each row alone and ignores that column.
    """

    def load_context(self, context: Any) -> None:
        from rerank_lib import load_reranker

        self.model = load_reranker(context.artifacts[MODEL_ARTIFACT], device="cpu")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
        if missing:
            raise ValueError(f"Input DataFrame lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}.")
        pairs = list(zip(model_input["query"].astype(str), model_input["passage"].astype(str), strict=True))
        given = model_input.get(FIRST_STAGE_COLUMN)
        if given is None or given.isna().all() or not isinstance(self.model, RerankPackage):
            return np.asarray(self.model.predict(pairs, show_progress_bar=False), dtype=np.float32)
        if given.isna().any():
            raise ValueError(f"{FIRST_STAGE_COLUMN} must hold a score on every row, or on none.")
        scores = self.model.predict(pairs, show_progress_bar=False, first_stage_scores=given.astype(float).tolist())
        return np.asarray(scores, dtype=np.float32)
