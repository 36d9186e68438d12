"""The CrossEncoder as an MLflow pyfunc model: a DataFrame of (query, passage) in, relevance scores out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

MODEL_ARTIFACT = "cross_encoder"
INPUT_COLUMNS = ("query", "passage")


class CrossEncoderPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the saved model folder from the model's artifacts and scores DataFrame rows.

    A folder saved with a score fusion loads as a :class:`rerank_lib.FusedReranker`, so the registered model scores
    as it was evaluated: the cross-encoder's probability mixed with the bi-encoder's cosine, row by row.
    """

    def load_context(self, context: Any) -> None:
        from rerank_lib import load_reranker

        self.model = load_reranker(context.artifacts[MODEL_ARTIFACT], device="cpu")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
        if missing:
            raise ValueError(f"Input DataFrame lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}.")
        pairs = list(zip(model_input["query"].astype(str), model_input["passage"].astype(str), strict=True))
        return np.asarray(self.model.predict(pairs, show_progress_bar=False), dtype=np.float32)
