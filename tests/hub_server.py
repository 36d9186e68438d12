"""A small Hugging Face Hub stand-in on 127.0.0.1, so push tests run the real ``HfApi`` client offline.

It implements the endpoints a folder push uses: ``create_repo``, ``repo_info``, ``list_repo_refs``,
``create_branch``, README metadata validation, ``preupload`` and the NDJSON ``commit``, including pull requests.
Small text files are answered with upload mode ``regular`` (content inline, base64, in the commit). Weights take
the LFS path as on the real Hub: files with a suffix from ``lfs_suffixes`` (``*.safetensors``, ``*.bin``, ... as in
the Hub's default ``.gitattributes``) or of at least ``lfs_threshold_bytes`` are answered ``lfs``; the client then
calls the LFS batch API (``/<repo>.git/info/lfs/objects/batch``), PUTs the bytes to the returned upload href (a
signed loopback URL standing in for the storage bucket, so it needs no token and must never get one), calls the
verify action, and the commit names the object by sha256 (``lfsFile``). Storage requests are recorded apart from
Hub API requests (``hub.storage_requests``), since on the real Hub they go to another host. The batch answer never
offers Xet, and while the server runs the client's Xet path is switched off (as ``HF_HUB_DISABLE_XET=1`` would):
huggingface_hub uses Xet whenever ``hf_xet`` is installed, without asking the server, and this stand-in has no Xet
storage. Files are stored per repo and revision so tests can read what arrived; ``GET``/``HEAD
/<repo>/resolve/<rev>/<path>`` serves them back (``hf_hub_download`` works against it).

Fault injection: ``hub.fail("commit", 500)`` makes the next commit answer 500 once; ``hub.lose_reply("commit")``
applies the next commit and then drops the connection without answering (a reply lost on the way back);
``LocalHub(token=...)`` answers 401 to any request that does not carry that token. A commit whose header names a
``parentCommit`` that is no longer the branch head is refused with 412, as on the Hub.

Usage::

    with LocalHub(token="hf_test") as hub:
        HfApi(endpoint=hub.url, token="hf_test").create_repo("org/model")
        assert hub.files("org/model") == {}
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

if TYPE_CHECKING:
    import pytest

ENDPOINTS = (
    "create_repo",
    "repo_info",
    "refs",
    "create_branch",
    "validate_yaml",
    "preupload",
    "commit",
    "commits",
    "lfs_batch",
    "lfs_upload",
    "lfs_verify",
    "resolve",
)
ZERO_OID = "0" * 40
REPO_ROUTE = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<action>branch|preupload|commits|commit|revision|refs)(?:/(?P<rev>.+))?)?$"
)
LFS_ROUTE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/(?P<action>batch|verify)$")
STORAGE_ROUTE = re.compile(r"^/lfs-storage/(?P<oid>[0-9a-f]{64})$")
RESOLVE_ROUTE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
# The Hub's default .gitattributes sends these to LFS whatever their size.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".npy", ".npz", ".pkl")
LFS_THRESHOLD_BYTES = 10 * 1024 * 1024  # the real Hub refuses larger files as regular uploads
LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"


@dataclass
class Commit:
    """One commit as it arrived: message, the ref it landed on and the full file tree after it."""

    repo_id: str
    oid: str
    ref: str
    summary: str
    description: str
    added: dict[str, bytes]
    deleted: list[str]
    pr_num: int | None = None
    lfs_paths: list[str] = field(default_factory=list)  # the files that arrived as ``lfsFile`` pointers
    date: str = ""


@dataclass
class Repo:
    repo_id: str
    private: bool
    refs: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": ZERO_OID})
    history: dict[str, list[str]] = field(default_factory=lambda: {"main": []})  # commit oids per ref, oldest first
    pull_requests: list[str] = field(default_factory=list)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    endpoint: str | None
    status: int = 0


@dataclass
class _Fault:
    endpoint: str
    status: int
    times: int
    message: str
    headers: dict[str, str]


class HubError(Exception):
    """An HTTP error answer, raised inside a handler."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class LocalHub:
    """The in-process Hub: start it, point ``HF_ENDPOINT`` or ``HfApi(endpoint=...)`` at ``url``."""

    def __init__(
        self,
        token: str | None = None,
        user: str = "test-user",
        lfs_threshold_bytes: int | None = LFS_THRESHOLD_BYTES,
        lfs_suffixes: tuple[str, ...] = LFS_SUFFIXES,
        lfs_verify: bool = True,
    ) -> None:
        self.token = token
        self.user = user
        self.lfs_threshold_bytes = lfs_threshold_bytes
        self.lfs_suffixes = lfs_suffixes
        self.verify_uploads = lfs_verify
        self.repos: dict[str, Repo] = {}
        self.commits: list[Commit] = []
        self.requests: list[RecordedRequest] = []
        self.storage_requests: list[RecordedRequest] = []  # PUTs to the signed upload hrefs (no token expected)
        self.lfs_objects: dict[str, bytes] = {}  # sha256 hex -> content, uploaded and checked
        self._pending_lfs: dict[str, int] = {}  # sha256 hex -> size announced in a batch call
        self._signing_key = secrets.token_hex(16)
        self._xet_setting: bool | None = None
        self.unhandled: list[str] = []
        self._faults: list[_Fault] = []
        self._lost_replies: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalHub is not running; use it as a context manager or call start().")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        from huggingface_hub import constants

        # huggingface_hub picks Xet whenever hf_xet is installed, without asking the server; there is no Xet here.
        self._xet_setting = constants.HF_HUB_DISABLE_XET
        constants.HF_HUB_DISABLE_XET = True
        handler = type("BoundHandler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None
        if self._xet_setting is not None:
            from huggingface_hub import constants

            constants.HF_HUB_DISABLE_XET = self._xet_setting
            self._xet_setting = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- test controls and inspection -----
    def fail(
        self,
        endpoint: str,
        status: int,
        times: int = 1,
        message: str = "Injected failure",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``endpoint`` (one of ``ENDPOINTS``) with ``status``."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"Unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}.")
        with self._lock:
            self._faults.append(_Fault(endpoint, status, times, message, headers or {}))

    def lose_reply(self, endpoint: str, times: int = 1) -> None:
        """Handle the next ``times`` requests to ``endpoint`` fully, then close the connection without answering."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"Unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}.")
        with self._lock:
            self._lost_replies[endpoint] = self._lost_replies.get(endpoint, 0) + times

    def _take_lost_reply(self, endpoint: str) -> bool:
        with self._lock:
            if self._lost_replies.get(endpoint, 0) > 0:
                self._lost_replies[endpoint] -= 1
                return True
        return False

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The file tree of a branch or ``refs/pr/N`` after the latest commit."""
        return dict(self.repos[repo_id].refs[revision])

    def calls(self, endpoint: str) -> list[RecordedRequest]:
        """Recorded requests to ``endpoint``; ``lfs_upload`` calls are the storage PUTs."""
        source = self.storage_requests if endpoint == "lfs_upload" else self.requests
        return [request for request in source if request.endpoint == endpoint]

    def is_lfs(self, path: str, size: int) -> bool:
        """The upload mode rule: LFS by suffix or size, never for empty files (as on the Hub)."""
        if size <= 0:
            return False
        if path.lower().endswith(tuple(suffix.lower() for suffix in self.lfs_suffixes)):
            return True
        return self.lfs_threshold_bytes is not None and size >= self.lfs_threshold_bytes

    # ----- internals -----
    def _take_fault(self, endpoint: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint == endpoint and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return self.repos[repo_id]

    def _ref(self, repo: Repo, revision: str) -> str:
        """A branch name, or a commit oid that is a branch's head (as clients pin downloads to one commit)."""
        if revision in repo.refs:
            return revision
        for ref, head in repo.heads.items():
            if head == revision and ref in repo.refs:
                return ref
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def create_repo(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        if payload.get("type") not in (None, "model"):
            raise HubError(400, "LocalHub serves model repos only")
        with self._lock:
            if repo_id in self.repos:
                # The Hub names the existing repo in its 409 answer; HfApi.create_repo(exist_ok=True) reads it.
                raise HubError(409, "You already created this model repo", extra={"url": f"{self.url}/{repo_id}"})
            self.repos[repo_id] = Repo(repo_id, private=payload.get("visibility") == "private")
        return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id}

    def repo_info(self, repo_id: str, revision: str | None) -> dict[str, Any]:
        repo = self._repo(repo_id)
        ref = self._ref(repo, unquote(revision) if revision else "main")
        files = [{"rfilename": name} for name in sorted(repo.refs[ref])]
        return {"id": repo_id, "modelId": repo_id, "sha": repo.heads[ref], "private": repo.private, "siblings": files}

    def list_refs(self, repo_id: str) -> dict[str, Any]:
        repo = self._repo(repo_id)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": repo.heads[name]}
            for name in repo.refs
            if not name.startswith("refs/pr/")
        ]
        return {"branches": branches, "tags": [], "converts": []}

    def create_branch(self, repo_id: str, branch: str, payload: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(repo_id)
        branch = unquote(branch)
        if branch.startswith("refs/"):
            raise HubError(400, f"Invalid reference for a branch: {branch}")
        with self._lock:
            if branch in repo.refs:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self._ref(repo, payload.get("startingPoint") or "main")
            repo.refs[branch] = dict(repo.refs[start])
            repo.heads[branch] = repo.heads[start]
            repo.history[branch] = list(repo.history[start])
        return {}

    def validate_yaml(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Like the Hub: a README whose YAML header does not parse to a mapping is rejected with 400."""
        content = str(payload.get("content", ""))
        match = re.match(r"^---\r?\n(.*?)\r?\n---\r?\n", content, re.S)
        if match:
            try:
                meta = yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                raise HubError(400, f"Invalid YAML in README.md: {error}") from error
            if meta is not None and not isinstance(meta, dict):
                raise HubError(400, "README.md metadata must be a mapping")
        return {"errors": [], "warnings": []}

    def preupload(self, repo_id: str, revision: str, payload: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(repo_id)
        ref = self._ref(repo, unquote(revision))
        files = []
        for item in payload.get("files", []):
            existing = repo.refs[ref].get(item["path"])
            oid = hashlib.sha1(existing).hexdigest() if existing is not None else None
            mode = "lfs" if self.is_lfs(item["path"], int(item.get("size", 0))) else "regular"
            files.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return {"files": files, "commitOid": repo.heads[ref]}

    def commit(self, repo_id: str, revision: str, body: bytes, create_pr: bool) -> dict[str, Any]:
        repo = self._repo(repo_id)
        target = self._ref(repo, unquote(revision))
        lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        added: dict[str, bytes] = {}
        deleted: list[str] = []
        lfs_paths: list[str] = []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "Only base64 file content is supported")
                added[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                content = self.lfs_objects.get(str(value.get("oid")))
                if value.get("algo") != "sha256" or content is None or len(content) != value.get("size"):
                    raise HubError(400, f"LFS pointer for {value.get('path')!r} names no uploaded object")
                added[value["path"]] = content
                lfs_paths.append(value["path"])
            elif line["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                raise HubError(400, f"LocalHub does not implement commit entries of kind {line['key']!r}")
        with self._lock:
            parent = header.get("parentCommit")
            if parent and not create_pr and parent != repo.heads[target]:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(repo.refs[target])
            for path in deleted:
                tree = {name: data for name, data in tree.items() if name != path and not name.startswith(path + "/")}
            tree.update(added)
            pr_num = None
            ref = target
            if create_pr:
                pr_num = len(repo.pull_requests) + 1
                ref = f"refs/pr/{pr_num}"
                repo.pull_requests.append(ref)
            digest = hashlib.sha1(f"{repo_id}\n{ref}\n{len(self.commits)}\n".encode() + body)
            oid = digest.hexdigest()
            repo.refs[ref] = tree
            repo.heads[ref] = oid
            repo.history[ref] = [*repo.history[target], oid]
            self.commits.append(
                Commit(
                    repo_id,
                    oid,
                    ref,
                    header.get("summary", ""),
                    header.get("description", ""),
                    added,
                    deleted,
                    pr_num,
                    lfs_paths,
                    datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                )
            )
        answer = {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "success": True}
        answer["pullRequestUrl"] = f"{self.url}/{repo_id}/discussions/{pr_num}" if pr_num else None
        return answer

    def list_commits(self, repo_id: str, revision: str) -> list[dict[str, Any]]:
        """A ref's history, newest first, in the shape ``HfApi.list_repo_commits`` reads (one page)."""
        repo = self._repo(repo_id)
        ref = self._ref(repo, unquote(revision))
        by_oid = {commit.oid: commit for commit in self.commits}
        return [
            {
                "id": oid,
                "authors": [{"user": self.user}],
                "date": by_oid[oid].date,
                "title": by_oid[oid].summary,
                "message": by_oid[oid].description,
            }
            for oid in reversed(repo.history[ref])
        ]

    # ----- LFS -----
    def _signature(self, oid: str) -> str:
        return hashlib.sha256(f"{self._signing_key}:{oid}".encode()).hexdigest()[:32]

    def lfs_batch(self, repo_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The git-lfs batch API, upload only, transfer ``basic``: an upload (and verify) action per new object."""
        self._repo(repo_id)
        if payload.get("operation") != "upload" or payload.get("hash_algo", "sha256") != "sha256":
            raise HubError(400, "LocalHub's LFS batch API supports sha256 uploads only")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "LocalHub's LFS batch API offers the 'basic' transfer only")
        objects = []
        for item in payload.get("objects", []):
            oid, size = str(item["oid"]), int(item["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size}
            stored = self.lfs_objects.get(oid)
            if stored is None or len(stored) != size:  # already stored: no actions, the client skips the upload
                with self._lock:
                    self._pending_lfs[oid] = size
                actions: dict[str, Any] = {
                    "upload": {"href": f"{self.url}/lfs-storage/{oid}?sig={self._signature(oid)}", "header": {}}
                }
                if self.verify_uploads:
                    actions["verify"] = {"href": f"{self.url}/{repo_id}.git/info/lfs/objects/verify", "header": {}}
                entry.update(authenticated=True, actions=actions)
            objects.append(entry)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def lfs_upload(self, oid: str, query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        """The storage PUT: only a signed href from a batch answer is accepted, and the bytes must hash to it."""
        if query.get("sig", [""])[0] != self._signature(oid) or oid not in self._pending_lfs:
            raise HubError(403, "Upload URL is not signed for this object")
        if hashlib.sha256(body).hexdigest() != oid or len(body) != self._pending_lfs[oid]:
            raise HubError(400, "Uploaded bytes do not match the announced oid and size")
        with self._lock:
            self.lfs_objects[oid] = body
            self._pending_lfs.pop(oid, None)
        return {}

    def lfs_verify(self, repo_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._repo(repo_id)
        stored = self.lfs_objects.get(str(payload.get("oid")))
        if stored is None or len(stored) != payload.get("size"):
            raise HubError(404, "Object not found in LFS storage")
        return {}

    def resolve(self, repo_id: str, revision: str, path: str) -> tuple[bytes, dict[str, str]]:
        """A file's bytes and the headers ``hf_hub_download`` reads (commit, etag; linked etag/size for LFS)."""
        repo = self._repo(repo_id)
        ref = self._ref(repo, unquote(revision))
        content = repo.refs[ref].get(unquote(path))
        if content is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        headers = {"X-Repo-Commit": repo.heads[ref], "Content-Type": "application/octet-stream"}
        sha256 = hashlib.sha256(content).hexdigest()
        if sha256 in self.lfs_objects:
            headers.update({"ETag": f'"{sha256}"', "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(content))})
        else:
            headers["ETag"] = f'"{hashlib.sha1(content).hexdigest()}"'
        return content, headers


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Silence the default stderr access log."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("PUT")

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("HEAD")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @staticmethod
    def _endpoint(method: str, path: str) -> str | None:
        if path == "/api/repos/create" and method == "POST":
            return "create_repo"
        if path == "/api/validate-yaml" and method == "POST":
            return "validate_yaml"
        if STORAGE_ROUTE.match(path):
            return "lfs_upload" if method == "PUT" else None
        lfs = LFS_ROUTE.match(path)
        if lfs:
            return f"lfs_{lfs.group('action')}" if method == "POST" else None
        if not path.startswith("/api/") and RESOLVE_ROUTE.match(path):
            return "resolve" if method in ("GET", "HEAD") else None
        match = REPO_ROUTE.match(path)
        if not match:
            return None
        action = match.group("action")
        if method == "GET" and action in (None, "revision"):
            return "repo_info"
        if method == "GET" and action == "refs":
            return "refs"
        if method == "GET" and action == "commits" and match.group("rev"):
            return "commits"
        if method == "POST" and action == "branch" and match.group("rev"):
            return "create_branch"
        if method == "POST" and action in ("preupload", "commit") and match.group("rev"):
            return action
        return None

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        endpoint = self._endpoint(method, parts.path)
        request = RecordedRequest(
            method, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body, endpoint
        )
        storage = endpoint == "lfs_upload"  # a signed storage URL: another host on the real Hub, no token
        (self.hub.storage_requests if storage else self.hub.requests).append(request)
        try:
            if endpoint is None:
                self.hub.unhandled.append(f"{method} {parts.path}")
                raise HubError(404, f"LocalHub does not implement {method} {parts.path}")
            authorized = self.headers.get("Authorization") == f"Bearer {self.hub.token}"
            if self.hub.token is not None and not storage and not authorized:
                raise HubError(401, "Invalid credentials in Authorization header")
            fault = self.hub._take_fault(endpoint)
            if fault is not None:
                request.status = fault.status
                self._send(fault.status, {"error": fault.message}, {"X-Error-Message": fault.message, **fault.headers})
                return
            if endpoint == "resolve":
                content, headers = self._resolve(parts.path)
                request.status = 200
                self._send_bytes(200, content, headers)
                return
            status, answer = self._route(endpoint, parts.path, request.query, body)
            if self.hub._take_lost_reply(endpoint):
                self.close_connection = True  # applied, but the client never hears back
                return
        except HubError as error:
            request.status = error.status
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, {"error": error.message, **error.extra}, headers)
            return
        request.status = status
        content_type = LFS_CONTENT_TYPE if endpoint in ("lfs_batch", "lfs_verify") else "application/json"
        self._send(status, answer, content_type=content_type)

    def _resolve(self, path: str) -> tuple[bytes, dict[str, str]]:
        match = RESOLVE_ROUTE.match(path)
        assert match is not None  # routed here only on a match
        return self.hub.resolve(match.group("repo"), match.group("rev"), match.group("path"))

    def _route(self, endpoint: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if endpoint == "lfs_upload":
            storage = STORAGE_ROUTE.match(path)
            assert storage is not None  # routed here only on a match
            return 200, self.hub.lfs_upload(storage.group("oid"), query, body)
        payload = json.loads(body) if body and endpoint != "commit" else {}
        lfs = LFS_ROUTE.match(path)
        if endpoint == "lfs_batch" and lfs:
            return 200, self.hub.lfs_batch(lfs.group("repo"), payload)
        if endpoint == "lfs_verify" and lfs:
            return 200, self.hub.lfs_verify(lfs.group("repo"), payload)
        match = REPO_ROUTE.match(path)
        repo_id = match.group("repo") if match else ""
        revision = match.group("rev") if match else None
        if endpoint == "create_repo":
            return self.hub.create_repo(payload)
        if endpoint == "validate_yaml":
            return 200, self.hub.validate_yaml(payload)
        if endpoint == "repo_info":
            return 200, self.hub.repo_info(repo_id, revision)
        if endpoint == "refs":
            return 200, self.hub.list_refs(repo_id)
        if endpoint == "commits":
            return 200, self.hub.list_commits(repo_id, revision or "main")
        if endpoint == "create_branch":
            return 200, self.hub.create_branch(repo_id, revision or "", payload)
        if endpoint == "preupload":
            return 200, self.hub.preupload(repo_id, revision or "main", payload)
        create_pr = query.get("create_pr", ["0"])[0] in ("1", "true")
        return 200, self.hub.commit(repo_id, revision or "main", body, create_pr)

    def _send(
        self,
        status: int,
        answer: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self._send_bytes(status, json.dumps(answer).encode("utf-8"), {"Content-Type": content_type, **(headers or {})})

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer carries the headers of the GET, never its body
            self.wfile.write(data)


@contextlib.contextmanager
def isolated_hub(
    monkeypatch: pytest.MonkeyPatch, home: Path, token: str, set_endpoint: bool = False
) -> Iterator[LocalHub]:
    """A running LocalHub that accepts only ``token``, where no saved login or ``HF_TOKEN`` can stand in for it.

    ``set_endpoint`` also points ``HF_ENDPOINT`` at it, for code that reaches the Hub without an endpoint argument.
    """
    monkeypatch.setenv("HF_HOME", str(Path(home) / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with LocalHub(token=token) as server:
        if set_endpoint:
            monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server
