"""`rerank serve-model` before the server starts: which version it serves, the command and environment it runs,
and the one-line errors when there is nothing to serve."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from rerank_app.champion import ServedModelError, ServedVersion, resolve_served_version
from rerank_app.cli import main
from rerank_app.serve_model import SERVING_MODEL_CONFIG, mlflow_serve_command, mlflow_serve_env
from tasks.config import load_params
from tasks.mlflow_model import INFERENCE_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
NAME = "team-reranker"


def registry(tmp_path: Path, versions: int, champion: str | None) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    for _ in range(versions):
        client.create_model_version(NAME, source="file:///tmp/m")
    if champion:
        client.set_registered_model_alias(NAME, "champion", champion)
    return uri


def overrides(uri: str) -> dict:
    return {"tracking": {"tracking_uri": uri}, "register": {"registered_model": NAME}}


def test_the_champion_alias_or_a_named_version_is_served(tmp_path: Path) -> None:
    uri = registry(tmp_path, versions=3, champion="2")
    cfg = load_params(ROOT / "params.yaml", overrides=overrides(uri))
    champion = resolve_served_version(cfg, ROOT, None)
    assert (champion.name, champion.version, champion.alias) == (NAME, "2", "champion")
    assert champion.uri == f"models:/{NAME}/2"  # pinned: moving the alias later changes nothing for this server
    assert resolve_served_version(cfg, ROOT, "3").version == "3"
    with pytest.raises(ServedModelError, match="has no version 9"):
        resolve_served_version(cfg, ROOT, "9")


def test_nothing_to_serve_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    args = ["--root", str(ROOT), "--set", f"tracking.tracking_uri={missing}", "serve-model"]
    assert main(args) == 2
    assert "No MLflow registry at" in capsys.readouterr().err
    assert not (tmp_path / "none" / "mlflow.db").exists()  # not created empty

    uri = registry(tmp_path, versions=1, champion=None)
    capsys.readouterr()
    args = ["--root", str(ROOT), "--set", f"tracking.tracking_uri={uri}", "--set", f"register.registered_model={NAME}"]
    assert main([*args, "serve-model", "--api", "rerank"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert f"{NAME} has no version with alias 'champion'" in err and "rerank promote --version N" in err


def test_the_mlflow_server_runs_in_this_interpreter_without_an_activated_venv() -> None:
    served = ServedVersion(NAME, "4", "champion", "sqlite:////data/mlflow.db")
    command = mlflow_serve_command(served, "127.0.0.1", 5005, 2)
    assert command[:3] == [sys.executable, "-m", "mlflow"]
    assert command[3:7] == ["models", "serve", "-m", f"models:/{NAME}/4"]
    assert command[command.index("--env-manager") + 1] == "local"
    assert command[command.index("--port") + 1] == "5005" and command[command.index("--workers") + 1] == "2"

    env = mlflow_serve_env(served, dict(INFERENCE_OPTIONS), base={"PATH": "/usr/bin", SERVING_MODEL_CONFIG: "{}"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # where `uvicorn` is
    assert (Path(sys.executable).parent / "uvicorn").is_file()
    assert env["MLFLOW_TRACKING_URI"] == env["MLFLOW_REGISTRY_URI"] == served.tracking_uri
    assert SERVING_MODEL_CONFIG not in env  # the logged defaults: nothing to override

    assert "OMP_NUM_THREADS" not in env

    int8 = {**INFERENCE_OPTIONS, "backend": "onnx", "quantize": "int8", "num_threads": 1}
    env = mlflow_serve_env(served, int8, base={})
    assert json.loads(env[SERVING_MODEL_CONFIG]) == {"backend": "onnx", "quantize": "int8", "num_threads": 1}
    assert env["OMP_NUM_THREADS"] == "1"  # torch's process-wide count (a fused model's bi-encoder)


def test_serve_model_has_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve-model", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: rerank serve-model" in text and "/invocations" in text and "/rerank" in text
