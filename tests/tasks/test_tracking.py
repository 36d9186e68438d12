from __future__ import annotations

import time
from pathlib import Path

import pytest

from tasks.tracking import TrackingUnavailableError, mlflow_metric_name, redact_uri, resolve_tracking_uri, start_run


def test_unreachable_server_fails_at_once_naming_the_uri_without_credentials(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match=r"http://\*\*\*@127.0.0.1:9/ is unreachable"):
        start_run("http://user:s3cret@127.0.0.1:9/", "exp", tmp_path)
    assert time.monotonic() - started < 30
    with pytest.raises(TrackingUnavailableError) as error:
        start_run("http://user:s3cret@127.0.0.1:9/", "exp", tmp_path)
    assert "s3cret" not in str(error.value)


def test_names_and_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlflow_metric_name("wikiqa_test_ndcg@10") == "wikiqa_test_ndcg_at_10"
    assert redact_uri("https://a:b@host/x") == "https://***@host/x"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://stale:5000")  # MLflow sets this in-process; params decide
    assert resolve_tracking_uri("http://mlflow:5000", tmp_path) == "http://mlflow:5000"
