"""Model weights reach the loopback Hub through the LFS path the real Hub uses (batch API, storage PUT, lfsFile).

The push call is ``push_folder``, the one the ``push`` stage makes; a tiny safetensors file stands in for weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download
from safetensors.torch import save_file

from rerank_lib.hub import RetryPolicy, push_folder
from tests.hub_server import LocalHub, RecordedRequest, isolated_hub

TOKEN = "hf_LfsTokenNeverInBodies0123456789abcdef"
FAST = RetryPolicy(attempts=3, base_delay=0.0)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    with isolated_hub(monkeypatch, tmp_path, TOKEN) as server:
        yield server


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A tiny model folder: text config and card (regular uploads) and real safetensors weights (LFS)."""
    import torch

    folder = tmp_path / "model"
    folder.mkdir()
    torch.manual_seed(0)
    save_file({"classifier.weight": torch.randn(4, 8), "classifier.bias": torch.randn(4)}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    (folder / "README.md").write_text("---\nlibrary_name: rerank_lib\n---\n# tiny\n")
    return folder


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaks(request: RecordedRequest, token: str) -> list[str]:
    """Where ``token`` shows up in a request other than its Authorization header."""
    places = [("path", request.path), ("query", json.dumps(request.query)), ("body", request.body.decode("latin-1"))]
    places += [(f"header {name}", value) for name, value in request.headers.items() if name != "authorization"]
    return [place for place, text in places if token in text]


def test_weights_go_through_lfs_and_download_byte_for_byte(hub: LocalHub, model_folder: Path, tmp_path: Path) -> None:
    weights = (model_folder / "model.safetensors").read_bytes()
    outcome = push_folder(model_folder, "org/lfs-model", token=TOKEN, endpoint=hub.url, retry=FAST)

    # the LFS path: preupload said "lfs", the batch API was called, the bytes were PUT to storage and verified
    (commit,) = hub.commits
    assert outcome.commit_oid == commit.oid and commit.lfs_paths == ["model.safetensors"]
    (batch,) = hub.calls("lfs_batch")
    assert batch.path == "/org/lfs-model.git/info/lfs/objects/batch" and batch.status == 200
    assert json.loads(batch.body)["objects"] == [{"oid": sha256(weights), "size": len(weights)}]
    (upload,) = hub.calls("lfs_upload")
    assert upload.method == "PUT" and upload.status == 200 and upload.body == weights
    assert "authorization" not in upload.headers  # the token never goes to the storage URL
    assert [r.status for r in hub.calls("lfs_verify")] == [200]
    assert hub.lfs_objects == {sha256(weights): weights}
    # the commit carried a pointer, not the bytes; the small files stayed inline
    (commit_request,) = hub.calls("commit")
    entries = [json.loads(line) for line in commit_request.body.decode().splitlines() if line.strip()]
    kinds = {entry["value"].get("path"): entry["key"] for entry in entries[1:]}
    assert kinds == {"model.safetensors": "lfsFile", "config.json": "file", "README.md": "file"}
    pointer = next(entry["value"] for entry in entries if entry["key"] == "lfsFile")
    assert pointer == {"path": "model.safetensors", "algo": "sha256", "oid": sha256(weights), "size": len(weights)}
    assert weights not in commit_request.body

    # what the Hub serves back is the local file, byte for byte
    assert sha256(hub.files("org/lfs-model")["model.safetensors"]) == sha256(weights)
    response = httpx.get(
        f"{hub.url}/org/lfs-model/resolve/main/model.safetensors", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200 and sha256(response.content) == sha256(weights)
    assert response.headers["x-linked-etag"] == f'"{sha256(weights)}"'
    downloaded = hf_hub_download(
        "org/lfs-model", "model.safetensors", token=TOKEN, endpoint=hub.url, cache_dir=tmp_path / "cache"
    )
    assert sha256(Path(downloaded).read_bytes()) == sha256(weights)

    # the token travelled only in Authorization headers of Hub API calls
    requests = hub.requests + hub.storage_requests
    assert all(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in hub.requests)
    assert [(r.method, r.path, leaks(r, TOKEN)) for r in requests if leaks(r, TOKEN)] == []
    assert not hub.unhandled


def test_a_second_push_of_the_same_weights_skips_the_upload(hub: LocalHub, model_folder: Path) -> None:
    push_folder(model_folder, "org/lfs-model", token=TOKEN, endpoint=hub.url, retry=FAST)
    (model_folder / "config.json").write_text("{}")
    push_folder(model_folder, "org/lfs-model", token=TOKEN, endpoint=hub.url, retry=FAST)
    assert len(hub.calls("lfs_batch")) == 2 and len(hub.calls("lfs_upload")) == 1  # the object was already stored
    assert [commit.lfs_paths for commit in hub.commits] == [["model.safetensors"], ["model.safetensors"]]
    weights = (model_folder / "model.safetensors").read_bytes()
    assert hub.files("org/lfs-model")["model.safetensors"] == weights


def test_size_threshold_sends_large_files_of_any_kind_to_lfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "vocab.txt").write_text("word\n" * 100)  # 500 bytes
    (folder / "config.json").write_text("{}")
    with LocalHub(token=TOKEN, lfs_threshold_bytes=256, lfs_verify=False) as hub:
        push_folder(folder, "org/big-vocab", token=TOKEN, endpoint=hub.url, retry=FAST)
        assert hub.commits[0].lfs_paths == ["vocab.txt"] and not hub.calls("lfs_verify")
        assert hub.files("org/big-vocab")["vocab.txt"] == (folder / "vocab.txt").read_bytes()


def test_storage_put_without_the_signature_is_refused(hub: LocalHub) -> None:
    oid = sha256(b"weights")
    response = httpx.put(f"{hub.url}/lfs-storage/{oid}?sig=forged", content=b"weights")
    assert response.status_code == 403 and oid not in hub.lfs_objects
