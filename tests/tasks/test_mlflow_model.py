"""The pyfunc's input checks and inference options: bad rows are MLflow "invalid parameter" errors (HTTP 400)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from rerank_lib import CrossEncoder
from tasks.mlflow_model import INFERENCE_OPTIONS, MODEL_ARTIFACT, CrossEncoderPyfunc, check_input, inference_options


def test_rows_become_pairs() -> None:
    frame = pd.DataFrame({"query": ["a cat", "a dog"], "passage": ["sleeps", "runs"], "extra": [1, 2]})
    assert check_input(frame) == [("a cat", "sleeps"), ("a dog", "runs")]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"query": ["q"]}), "lacks column(s) ['passage']"),
        (
            pd.DataFrame({"query": ["q", None, "q"], "passage": ["p", "p", "p"]}),
            "'query' is empty (null) in row(s) [1]",
        ),
        (
            pd.DataFrame({"query": ["q", "q"], "passage": [None, float("nan")]}),
            "'passage' is empty (null) in row(s) [0, 1]",
        ),
    ],
)
def test_bad_rows_are_invalid_parameter_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(MlflowException) as raised:
        check_input(frame)
    assert message in raised.value.message
    assert raised.value.get_http_status_code() == 400


def test_load_time_options_override_only_known_keys() -> None:
    assert inference_options(None) == INFERENCE_OPTIONS
    assert inference_options({"backend": "onnx", "quantize": "int8", "other": 1}) == {
        "backend": "onnx",
        "quantize": "int8",
        "precision": "fp32",
        "num_threads": None,
    }


def test_the_pyfunc_loads_with_the_configured_backend_and_scores(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "model")
    pairs = [("what is the capital of france", "paris"), ("a cat", "a dog")]
    expected = tiny_model.predict(pairs)
    frame = pd.DataFrame(pairs, columns=["query", "passage"])
    for config in (None, {"backend": "onnx"}):
        model = CrossEncoderPyfunc()
        model.load_context(SimpleNamespace(artifacts={MODEL_ARTIFACT: str(tmp_path / "model")}, model_config=config))
        assert model.model.backend == (config or INFERENCE_OPTIONS)["backend"]
        assert model.predict(None, frame).tolist() == pytest.approx(expected.tolist(), abs=1e-4)
