"""A small Hugging Face Hub stand-in on 127.0.0.1, so push tests run the real ``HfApi`` client offline.

It implements the endpoints a folder push uses: ``create_repo``, ``repo_info``, ``list_repo_refs``,
``create_branch``, README metadata validation, ``preupload`` and the NDJSON ``commit``, including pull requests.
Every file is answered with upload mode ``regular``, so file contents arrive inline (base64) in the commit and
no LFS or Xet transfer is needed. Files are stored per repo and revision so tests can read what arrived.

Fault injection: ``hub.fail("commit", 500)`` makes the next commit answer 500 once; ``LocalHub(token=...)``
answers 401 to any request that does not carry that token.

Usage::

    with LocalHub(token="hf_test") as hub:
        HfApi(endpoint=hub.url, token="hf_test").create_repo("org/model")
        assert hub.files("org/model") == {}
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

ENDPOINTS = ("create_repo", "repo_info", "refs", "create_branch", "validate_yaml", "preupload", "commit")
ZERO_OID = "0" * 40
REPO_ROUTE = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<action>branch|preupload|commit|revision|refs)(?:/(?P<rev>.+))?)?$"
)


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


@dataclass
class Repo:
    repo_id: str
    private: bool
    refs: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": ZERO_OID})
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

    def __init__(self, token: str | None = None, user: str = "test-user") -> None:
        self.token = token
        self.user = user
        self.repos: dict[str, Repo] = {}
        self.commits: list[Commit] = []
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[str] = []
        self._faults: list[_Fault] = []
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

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The file tree of a branch or ``refs/pr/N`` after the latest commit."""
        return dict(self.repos[repo_id].refs[revision])

    def calls(self, endpoint: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.endpoint == endpoint]

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
        if revision not in repo.refs:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return revision

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
            files.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
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
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "Only base64 file content is supported")
                added[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                raise HubError(400, f"LocalHub never asked for {line['key']!r}; files are uploaded as 'regular'")
        with self._lock:
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
            self.commits.append(
                Commit(
                    repo_id, oid, ref, header.get("summary", ""), header.get("description", ""), added, deleted, pr_num
                )
            )
        answer = {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "success": True}
        answer["pullRequestUrl"] = f"{self.url}/{repo_id}/discussions/{pr_num}" if pr_num else None
        return answer


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Silence the default stderr access log."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("POST")

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
        match = REPO_ROUTE.match(path)
        if not match:
            return None
        action = match.group("action")
        if method == "GET" and action in (None, "revision"):
            return "repo_info"
        if method == "GET" and action == "refs":
            return "refs"
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
        self.hub.requests.append(request)
        try:
            if endpoint is None:
                self.hub.unhandled.append(f"{method} {parts.path}")
                raise HubError(404, f"LocalHub does not implement {method} {parts.path}")
            if self.hub.token is not None and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
                raise HubError(401, "Invalid credentials in Authorization header")
            fault = self.hub._take_fault(endpoint)
            if fault is not None:
                request.status = fault.status
                self._send(fault.status, {"error": fault.message}, {"X-Error-Message": fault.message, **fault.headers})
                return
            status, answer = self._route(endpoint, parts.path, request.query, body)
        except HubError as error:
            request.status = error.status
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, {"error": error.message, **error.extra}, headers)
            return
        request.status = status
        self._send(status, answer)

    def _route(self, endpoint: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        payload = json.loads(body) if body and endpoint != "commit" else {}
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
        if endpoint == "create_branch":
            return 200, self.hub.create_branch(repo_id, revision or "", payload)
        if endpoint == "preupload":
            return 200, self.hub.preupload(repo_id, revision or "main", payload)
        create_pr = query.get("create_pr", ["0"])[0] in ("1", "true")
        return 200, self.hub.commit(repo_id, revision or "main", body, create_pr)

    def _send(self, status: int, answer: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
