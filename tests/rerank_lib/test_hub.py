"""CrossEncoder.push_to_hub against a real HTTP Hub stand-in on loopback (tests/hub_server.py)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rerank_lib import CrossEncoder
from rerank_lib.hub import HubPushError, RetryPolicy, push_folder
from rerank_lib.model_card.collect import card_data_from_model
from tests.hub_server import LocalHub, isolated_hub

TOKEN = "hf_TestTokenDoNotLeak0123456789abcdef"
FAST = RetryPolicy(attempts=3, base_delay=0.0)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    with isolated_hub(monkeypatch, tmp_path, TOKEN, set_endpoint=True) as server:
        yield server


def header(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def test_push_uploads_the_model_folder_in_one_commit(tiny_model: CrossEncoder, hub: LocalHub) -> None:
    url = tiny_model.push_to_hub(
        "org/tiny", token=TOKEN, private=True, commit_message="First upload", tags=["team-a"], retry=FAST
    )
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert url == f"{hub.url}/org/tiny/commit/{commit.oid}"
    assert commit.summary == "First upload" and commit.ref == "main"
    files = hub.files("org/tiny")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(files)
    assert json.loads(files["config.json"])["architectures"] == ["BertForSequenceClassification"]
    assert hub.repos["org/tiny"].private
    card = files["README.md"].decode()
    assert "team-a" in header(card)["tags"] and 'CrossEncoder("org/tiny")' in card
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests)
    assert not hub.unhandled


def test_revision_creates_the_branch_and_create_pr_returns_the_pr_url(tiny_model: CrossEncoder, hub: LocalHub) -> None:
    commit_url = tiny_model.push_to_hub("org/tiny", token=TOKEN, revision="v1", retry=FAST)
    assert "v1" in hub.repos["org/tiny"].refs and "config.json" in hub.files("org/tiny", "v1")
    assert hub.files("org/tiny", "main") == {}  # the default branch is untouched
    assert commit_url.startswith(f"{hub.url}/org/tiny/commit/")
    # second push to the same branch: the branch already exists, which is fine
    pr_url = tiny_model.push_to_hub("org/tiny", token=TOKEN, revision="v1", create_pr=True, retry=FAST)
    assert pr_url == f"{hub.url}/org/tiny/discussions/1"
    assert hub.commits[-1].ref == "refs/pr/1" and len(hub.calls("create_branch")) == 2


def test_path_in_repo_uploads_into_a_folder(tiny_model: CrossEncoder, hub: LocalHub) -> None:
    tiny_model.push_to_hub(
        "org/ckpt", token=TOKEN, commit_message="step 500", path_in_repo="checkpoint-500", retry=FAST
    )
    files = hub.files("org/ckpt")
    assert "checkpoint-500/config.json" in files and "config.json" not in files


def test_loaded_card_is_pushed_unchanged_apart_from_tags(
    tiny_model: CrossEncoder, hub: LocalHub, tmp_path: Path
) -> None:
    from rerank_lib.model_card import render_model_card

    tiny_model.save_pretrained(tmp_path / "m")
    card = render_model_card(card_data_from_model(tiny_model, "Loaded card"))
    (tmp_path / "m" / "README.md").write_text(card, encoding="utf-8")
    loaded = CrossEncoder(tmp_path / "m", device="cpu")
    loaded.push_to_hub("org/loaded", token=TOKEN, retry=FAST)
    pushed = hub.files("org/loaded")["README.md"].decode()
    assert pushed == card.replace('CrossEncoder("path/to/model")', 'CrossEncoder("org/loaded")')


def test_token_from_the_environment_when_none_is_given(
    tiny_model: CrossEncoder, hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    tiny_model.push_to_hub("org/env-token", retry=FAST)
    assert "config.json" in hub.files("org/env-token")


def test_injected_500_is_retried_and_the_push_succeeds(
    tiny_model: CrossEncoder, hub: LocalHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.fail("commit", 500)
    hub.fail("create_repo", 503)
    with caplog.at_level(logging.WARNING, logger="rerank_lib.hub"):
        url = tiny_model.push_to_hub("org/flaky", token=TOKEN, retry=FAST)
    assert [r.status for r in hub.calls("commit")] == [500, 200]
    assert [r.status for r in hub.calls("create_repo")] == [503, 200]
    assert url.endswith(hub.commits[0].oid) and len(hub.commits) == 1
    assert "retry 1 of 2" in caplog.text


def test_429_is_retried_but_persistent_5xx_gives_up(tiny_model: CrossEncoder, hub: LocalHub) -> None:
    hub.fail("commit", 429)
    tiny_model.push_to_hub("org/limited", token=TOKEN, retry=FAST)
    assert [r.status for r in hub.calls("commit")] == [429, 200]
    hub.fail("commit", 502, times=5)
    with pytest.raises(HubPushError, match="after 3 attempts") as error:
        tiny_model.push_to_hub("org/limited", token=TOKEN, retry=FAST)
    assert error.value.transient and error.value.status == 502


def test_401_fails_at_once_with_a_clear_message(
    tiny_model: CrossEncoder, hub: LocalHub, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "hf_WrongTokenAlsoSecret9876543210fedcba"
    with caplog.at_level(logging.DEBUG), pytest.raises(HubPushError) as error:
        tiny_model.push_to_hub("org/denied", token=wrong, retry=FAST)
    assert error.value.status == 401 and not error.value.transient
    assert "401 Unauthorized" in str(error.value) and "write token" in str(error.value)
    assert len(hub.calls("create_repo")) == 1 and not hub.calls("commit")  # no retry, nothing uploaded
    out, err = capfd.readouterr()
    for text in (str(error.value), repr(error.value), out, err, caplog.text):
        assert wrong not in text and TOKEN not in text


@pytest.mark.parametrize(("status", "words"), [(403, "no write access"), (404, "does not exist")])
def test_403_and_404_fail_at_once(tiny_model: CrossEncoder, hub: LocalHub, status: int, words: str) -> None:
    hub.fail("commit", status, times=3)
    with pytest.raises(HubPushError, match=words):
        tiny_model.push_to_hub("org/forbidden", token=TOKEN, retry=FAST)
    assert len(hub.calls("commit")) == 1


def test_connection_errors_are_retried(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    with pytest.raises(HubPushError, match="after 3 attempts") as error:
        push_folder(
            tmp_path / "model",
            "org/offline",
            token=TOKEN,
            endpoint=f"http://127.0.0.1:{port}",
            retry=RetryPolicy(attempts=3, base_delay=0.5),
            sleep=waits.append,
        )
    assert error.value.transient and len(waits) == 2 and waits[1] > waits[0]  # exponential backoff


def test_invalid_repo_id_fails_before_any_request(tiny_model: CrossEncoder, hub: LocalHub) -> None:
    from rerank_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="Invalid Hub repo id"):
        tiny_model.push_to_hub("not a repo", token=TOKEN)
    assert not hub.requests
