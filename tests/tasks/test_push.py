"""Stage `push`: dry runs, a real push to the loopback Hub, retries, auth failures, and no token anywhere."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from rerank_lib import CrossEncoder
from rerank_lib.errors import ConfigError
from rerank_lib.hub import HubPushError
from rerank_lib.model_card import render_model_card
from rerank_lib.model_card.collect import card_data_from_model
from tasks.config import PushConfig, load_params
from tasks.push import PushResult, result_summary, run_push
from tests.hub_server import LocalHub, isolated_hub

ROOT = Path(__file__).resolve().parents[2]

TOKEN = "hf_PipelineTokenNeverLogged0123456789ab"
PROJECT = Path(__file__).resolve().parents[2]
RUN_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """A carded model folder as the card stage leaves it."""
    folder = tmp_path_factory.mktemp("push") / "model"
    model = CrossEncoder(tiny_bert_dir, device="cpu")
    model.save_pretrained(folder)
    (folder / "README.md").write_text(render_model_card(card_data_from_model(model, "Pipeline model")))
    return folder


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.json"
    record = {"run_id": RUN_ID, "model_version": "7", "model_name": "wikiqa-reranker", "experiment_id": "1"}
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    with isolated_hub(monkeypatch, tmp_path, TOKEN) as server:
        yield server


def config(hub: LocalHub | None = None, **overrides) -> PushConfig:
    options = dict(enabled=True, repo_id="org/wikiqa-reranker", backoff_seconds=0.0, max_attempts=3)
    if hub is not None:
        options["endpoint"] = hub.url
    options.update(overrides)
    return PushConfig(**options)


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True, text=True).stdout.strip()


def test_disabled_push_is_a_dry_run_with_a_manifest(
    model_dir: Path, registry: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tasks.push"):
        result = run_push(config(enabled=False), model_dir, registry, tmp_path / "push.json", root=PROJECT)
    assert result.skipped and not result.pushed and result.skipped_reason == "push.enabled is false"
    manifest = json.loads((tmp_path / "push.json").read_text())
    assert manifest["dry_run"] and not manifest["pushed"]
    paths = [entry["path"] for entry in manifest["files"]]
    assert {"config.json", "model.safetensors", "README.md"} <= set(paths) and paths == result.files
    assert all(len(entry["sha256"]) == 64 and entry["size"] > 0 for entry in manifest["files"])
    assert RUN_ID in manifest["commit_message"] and head_commit()[:12] in manifest["commit_message"]
    assert f"Git commit: {head_commit()}" in manifest["commit_description"]
    assert "Registered model: wikiqa-reranker version 7" in manifest["commit_description"]
    assert "model.safetensors" in caplog.text and "Push skipped" in caplog.text


def test_no_token_is_a_dry_run(model_dir: Path, registry: Path, tmp_path: Path) -> None:
    result = run_push(
        config(secret_block="hf-token"),
        model_dir,
        registry,
        tmp_path / "push.json",
        environ={},
        secret_loader=lambda name: None,
    )
    assert result.skipped and "HF_TOKEN" in (result.skipped_reason or "") and "hf-token" in result.skipped_reason
    assert json.loads((tmp_path / "push.json").read_text())["token_source"] is None


def test_push_with_a_token_from_the_environment(
    model_dir: Path,
    registry: Path,
    hub: LocalHub,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    cfg = config(hub, tags=["wikiqa"], private=True)
    with caplog.at_level(logging.DEBUG):
        result = run_push(cfg, model_dir, registry, tmp_path / "push.json", root=PROJECT, environ={"HF_TOKEN": TOKEN})
    assert result.pushed and not result.skipped
    commit = hub.commits[0]
    assert len(hub.commits) == 1 and result.url == f"{hub.url}/org/wikiqa-reranker/commit/{commit.oid}"
    assert RUN_ID in commit.summary and head_commit()[:12] in commit.summary
    assert f"MLflow run: {RUN_ID}" in commit.description and "version 7" in commit.description
    files = hub.files("org/wikiqa-reranker")
    local = {p.name for p in model_dir.iterdir()}
    assert set(files) == local
    assert files["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    # the weights took the real Hub's LFS path (batch API, storage PUT without the token), the rest went inline
    assert commit.lfs_paths == ["model.safetensors"] and len(hub.calls("lfs_batch")) == 1
    assert [("authorization" in r.headers, r.status) for r in hub.calls("lfs_upload")] == [(False, 200)]
    readme = files["README.md"].decode()
    assert 'CrossEncoder("org/wikiqa-reranker")' in readme and "- wikiqa\n" in readme
    assert (model_dir / "README.md").read_text() != readme  # the model folder itself is never modified
    assert hub.repos["org/wikiqa-reranker"].private
    manifest_text = (tmp_path / "push.json").read_text()
    manifest = json.loads(manifest_text)
    assert (
        manifest["pushed"]
        and manifest["url"] == result.url
        and manifest["token_source"] == "environment variable HF_TOKEN"
    )
    # the token reached the Hub, and nothing else
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests)
    out, err = capfd.readouterr()
    for text in (manifest_text, repr(result), json.dumps(result_summary(result)), readme, caplog.text, out, err):
        assert TOKEN not in text
    assert TOKEN not in commit.summary + commit.description


def test_token_from_a_prefect_secret_block_and_a_pull_request(
    model_dir: Path, registry: Path, hub: LocalHub, tmp_path: Path
) -> None:
    requested: list[str] = []

    def secret(name: str) -> str:
        requested.append(name)
        return TOKEN

    cfg = config(hub, secret_block="hf-push-token", revision="candidate", create_pr=True)
    result = run_push(cfg, model_dir, registry, tmp_path / "push.json", environ={}, secret_loader=secret)
    assert requested == ["hf-push-token"] and result.token_source == "Prefect Secret block 'hf-push-token'"
    assert result.pr_url == result.url == f"{hub.url}/org/wikiqa-reranker/discussions/1"
    assert "candidate" in hub.repos["org/wikiqa-reranker"].refs and hub.commits[0].ref == "refs/pr/1"


def test_injected_500_is_retried(model_dir: Path, registry: Path, hub: LocalHub, tmp_path: Path) -> None:
    hub.fail("commit", 500)
    waits: list[float] = []
    result = run_push(
        config(hub), model_dir, registry, tmp_path / "push.json", environ={"HF_TOKEN": TOKEN}, sleep=waits.append
    )
    assert result.pushed and [r.status for r in hub.calls("commit")] == [500, 200] and len(waits) == 1


def test_401_fails_at_once_and_leaks_nothing(
    model_dir: Path, registry: Path, hub: LocalHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "hf_RevokedTokenStillSecret00112233445566"
    with caplog.at_level(logging.DEBUG), pytest.raises(HubPushError, match="401 Unauthorized") as error:
        run_push(
            config(hub, token_env="PUSH_TOKEN"),
            model_dir,
            registry,
            tmp_path / "push.json",
            environ={"PUSH_TOKEN": wrong},
        )
    assert "environment variable PUSH_TOKEN" in str(error.value)
    assert len(hub.calls("create_repo")) == 1 and not hub.calls("commit")
    assert wrong not in str(error.value) and wrong not in caplog.text


def test_a_real_push_needs_the_registry_record(model_dir: Path, hub: LocalHub, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="register stage"):
        run_push(config(hub), model_dir, tmp_path / "missing.json", tmp_path / "push.json", environ={"HF_TOKEN": TOKEN})
    assert not hub.requests


def test_config_rejects_tokens_and_bad_settings() -> None:
    with pytest.raises(ConfigError) as error:
        load_params(ROOT / "params.yaml", overrides={"push": {"token_env": TOKEN}})
    message = str(error.value)
    assert "looks like a Hub token" in message and TOKEN not in message and TOKEN not in repr(error.value.__cause__)
    with pytest.raises(ValidationError, match="repo_id is not set"):
        PushConfig(enabled=True)
    with pytest.raises(ValidationError, match="Invalid Hub repo id"):
        PushConfig(repo_id="not a repo")
    with pytest.raises(ValidationError, match="Extra inputs"):
        PushConfig.model_validate({"token": "anything"})
    defaults = PushConfig()
    assert (defaults.enabled, defaults.private, defaults.token_env) == (False, True, "HF_TOKEN")


def test_result_summary_is_json_friendly(model_dir: Path, registry: Path, tmp_path: Path) -> None:
    result = run_push(config(enabled=False), model_dir, registry, tmp_path / "push.json")
    assert isinstance(result, PushResult)
    summary = result_summary(result)
    assert summary["skipped"] and json.loads(json.dumps(summary))["manifest_path"] == str(tmp_path / "push.json")
