"""A commit retried after its reply was lost must not land twice (tests/hub_server.py ``lose_reply``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from rerank_lib.hub import HubPushError, RetryPolicy, push_folder
from tests.hub_server import LocalHub, isolated_hub

TOKEN = "hf_RetryTokenNeverLogged0123456789abcdef"
FAST = RetryPolicy(attempts=3, base_delay=0.0)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    with isolated_hub(monkeypatch, tmp_path, TOKEN) as server:
        yield server


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"a": 1}')
    (model / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return model


@pytest.mark.parametrize("earlier_commits", [0, 1])
def test_lost_commit_reply_is_not_committed_twice(
    hub: LocalHub, folder: Path, earlier_commits: int, caplog: pytest.LogCaptureFixture
) -> None:
    for number in range(earlier_commits):
        push_folder(folder, "org/m", token=TOKEN, endpoint=hub.url, commit_message=f"earlier {number}", retry=FAST)
    (folder / "config.json").write_text('{"a": 2}')
    hub.lose_reply("commit")
    with caplog.at_level(logging.WARNING, logger="rerank_lib.hub"):
        outcome = push_folder(folder, "org/m", token=TOKEN, endpoint=hub.url, commit_message="the push", retry=FAST)
    assert len(hub.commits) == earlier_commits + 1  # exactly one new commit
    landed = hub.commits[-1]
    assert landed.summary == "the push" and outcome.commit_oid == landed.oid
    assert outcome.commit_url == f"{hub.url}/org/m/commit/{landed.oid}"
    assert len(hub.calls("commit")) == earlier_commits + 1  # the lost one was not sent again
    assert hub.files("org/m")["config.json"] == b'{"a": 2}'
    assert "landed although its reply was lost" in caplog.text and TOKEN not in caplog.text


def test_commit_that_did_not_land_is_retried(hub: LocalHub, folder: Path) -> None:
    hub.fail("commit", 503)
    outcome = push_folder(folder, "org/m", token=TOKEN, endpoint=hub.url, commit_message="the push", retry=FAST)
    assert [r.status for r in hub.calls("commit")] == [503, 200]
    assert len(hub.commits) == 1 and outcome.commit_oid == hub.commits[0].oid


def test_commit_on_a_branch_that_moved_is_refused_not_retried(
    hub: LocalHub, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else commits between our read of the head and our commit: the Hub answers 412 and nothing lands."""
    push_folder(folder, "org/m", token=TOKEN, endpoint=hub.url, commit_message="first", retry=FAST)
    real_commit = hub.commit

    def concurrent_then_ours(repo_id: str, revision: str, body: bytes, create_pr: bool) -> dict:
        monkeypatch.setattr(hub, "commit", real_commit)
        other = b'{"key":"header","value":{"summary":"someone else"}}\n'
        real_commit(repo_id, revision, other, False)
        return real_commit(repo_id, revision, body, create_pr)

    monkeypatch.setattr(hub, "commit", concurrent_then_ours)
    with pytest.raises(HubPushError) as error:
        push_folder(folder, "org/m", token=TOKEN, endpoint=hub.url, commit_message="second", retry=FAST)
    assert error.value.status == 412 and [c.summary for c in hub.commits] == ["first", "someone else"]
