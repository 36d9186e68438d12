"""The CrossEncoder as an MLflow pyfunc model: a DataFrame of (query, passage) in, relevance scores out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

MODEL_ARTIFACT = "cross_encoder"
INPUT_COLUMNS = ("query", "passage")
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
    """Loads the saved model folder from the model's artifacts and scores DataFrame rows.

    A folder saved with a score fusion loads as a :class:`rerank_lib.FusedReranker`, so the registered model scores
    as it was evaluated: the cross-encoder's probability mixed with the bi-encoder's cosine, row by row.
    """

    def load_context(self, context: Any) -> None:
        from rerank_lib import load_reranker

        options = inference_options(getattr(context, "model_config", None))
        self.model = load_reranker(context.artifacts[MODEL_ARTIFACT], device="cpu", **options)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        pairs = check_input(model_input)
        return np.asarray(self.model.predict(pairs, show_progress_bar=False), dtype=np.float32)
