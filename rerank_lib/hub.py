"""Push a CrossEncoder (or a saved model folder) to the Hugging Face Hub or any Hub-compatible endpoint.

One push is: create the repo (``exist_ok``), create the branch when a revision is given, then upload every file of
the folder in ONE commit (``create_commit``; ``upload_folder`` may split large folders into several commits).
Transient failures (connection errors, 5xx, 408, 429) are retried with exponential backoff; 401/403/404 stop at
once with a message that says what to check. A commit is not idempotent, so a retry after a failed commit attempt
first asks the Hub whether the commit landed anyway (a reply lost on the way back) and, if it did, takes it instead
of committing twice; the commit names the branch head it was built on (``parent_commit``), so it never lands on top
of a change it did not see. The token is passed explicitly and never logged or put in messages.
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from rerank_lib.errors import ConfigError, RerankError

if TYPE_CHECKING:
    from rerank_lib.model import CrossEncoder
    from rerank_lib.model_card import ModelCardData

logger = logging.getLogger(__name__)

REPO_ID_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
DEFAULT_COMMIT_MESSAGE = "Upload CrossEncoder model with rerank_lib"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Folders that are never part of a model: VCS data and local caches.
SKIPPED_PARTS = frozenset({".git", ".cache", "__pycache__", ".ipynb_checkpoints"})

T = TypeVar("T")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error types of whichever HTTP client this huggingface_hub uses (httpx2 or httpx)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        for name in ("TransportError", "ConnectionError", "Timeout"):
            error_type = getattr(module, name, None)
            if isinstance(error_type, type) and issubclass(error_type, BaseException):
                errors.append(error_type)
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


class HubPushError(RerankError):
    """The Hub refused the push (bad token, no permission, missing repo) or kept failing after all retries."""

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient Hub failures are retried (delays double, with jitter, up to a cap)."""

    attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError(f"RetryPolicy needs attempts >= 1 and non-negative delays, got {self}.")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        raw = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return raw * (0.75 + 0.5 * random.random())


@dataclass(frozen=True)
class PushOutcome:
    """Where the files landed. ``url`` is the pull request when one was opened, else the commit."""

    repo_id: str
    revision: str
    commit_url: str
    commit_oid: str
    pr_url: str | None
    files: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.pr_url or self.commit_url


def validate_repo_id(repo_id: str) -> str:
    """Reject an invalid repo id before any upload starts."""
    if not REPO_ID_PATTERN.match(repo_id) or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise ConfigError(
            f"Invalid Hub repo id {repo_id!r}: expected 'namespace/name' of letters, digits, '-', '_', '.'."
        )
    return repo_id


def resolve_endpoint(endpoint: str | None) -> str | None:
    """The explicit endpoint, else ``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import)."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def list_folder_files(folder: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the files a push uploads, sorted; VCS and cache folders are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"Model folder {root} does not exist or is not a folder.")
    names = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not SKIPPED_PARTS.intersection(relative.parts):
            names.append(relative.as_posix())
    return names


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _fatal_message(status: int, step: str, repo_id: str, token_source: str) -> str:
    if status == 401:
        return (
            f"Hub push of {repo_id!r} failed at {step}: 401 Unauthorized. The token from {token_source} is missing, "
            "invalid or expired; create a write token at https://huggingface.co/settings/tokens."
        )
    if status == 403:
        return (
            f"Hub push of {repo_id!r} failed at {step}: 403 Forbidden. The token from {token_source} has no write "
            f"access to the namespace of {repo_id!r}; use a token with write permission for it."
        )
    return (
        f"Hub push of {repo_id!r} failed at {step}: 404 Not Found. The repo or revision does not exist or is not "
        f"visible with the token from {token_source}; check the repo id, the revision and the token's access."
    )


def call_with_retry(
    step: str,
    function: Callable[[], T],
    *,
    repo_id: str,
    token: str | None,
    retry: RetryPolicy,
    token_source: str = "the token argument",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one Hub call, retrying transient failures; other failures become a ``HubPushError`` at once."""
    for attempt in range(1, retry.attempts + 1):
        try:
            return function()
        except HfHubHTTPError as error:
            status = _status(error)
            # The chain is cut (from None) and the server's words redacted: nothing the server echoes can leak.
            detail = _redact(str(error), token).splitlines()[0] if str(error) else f"HTTP {status}"
            if status in (401, 403, 404):
                message = f"{_fatal_message(status, step, repo_id, token_source)} ({detail})"
                raise HubPushError(message, status) from None
            if status not in RETRY_STATUS:
                raise HubPushError(f"Hub push of {repo_id!r} failed at {step}: {detail}", status) from None
            server = _redact(str(getattr(error, "server_message", "") or ""), token)
            reason = f"HTTP {status} {server}".strip()
        except TRANSPORT_ERRORS as error:
            status = None
            reason = f"{type(error).__name__}: {_redact(str(error), token)}"
        if attempt == retry.attempts:
            raise HubPushError(
                f"Hub push of {repo_id!r} failed at {step} after {retry.attempts} attempts; last error {reason}.",
                status,
                transient=True,
            ) from None
        wait = retry.delay(attempt)
        logger.warning(
            "Hub %s for %s failed (%s); retry %d of %d in %.1fs.",
            step,
            repo_id,
            reason,
            attempt,
            retry.attempts - 1,
            wait,
        )
        sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None,
    private: bool | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    exist_ok: bool = True,
    endpoint: str | None = None,
    retry: RetryPolicy | None = None,
    token_source: str = "the token argument",
    replacements: Mapping[str, bytes] | None = None,
    path_in_repo: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushOutcome:
    """Upload every file of ``folder`` to ``repo_id`` in one commit (or one pull request).

    ``replacements`` maps relative paths to the bytes to upload instead of the file on disk (e.g. a README whose
    usage snippet names the repo), so the model folder itself is never modified. ``path_in_repo`` puts the files
    under that folder of the repo (e.g. ``checkpoint-500``) instead of its root.
    """
    validate_repo_id(repo_id)
    prefix = (path_in_repo or "").strip("/")
    if ".." in prefix.split("/"):
        raise ConfigError(f"path_in_repo {path_in_repo!r} may not contain '..'.")
    replacements = dict(replacements or {})
    files = sorted(set(list_folder_files(folder)) | set(replacements))
    if not files:
        raise ConfigError(f"Model folder {folder} is empty; nothing to push.")
    retry = retry or RetryPolicy()
    api = HfApi(endpoint=resolve_endpoint(endpoint), token=token)

    def run(step: str, function: Callable[[], T]) -> T:
        return call_with_retry(
            step, function, repo_id=repo_id, token=token, retry=retry, token_source=token_source, sleep=sleep
        )

    # A bare name: the Hub puts the repo in the token's namespace, and the rest of the push must name it so.
    repo_id = resolve_repo_id(
        repo_id,
        token=token,
        private=private,
        exist_ok=exist_ok,
        endpoint=endpoint,
        retry=retry,
        token_source=token_source,
        sleep=sleep,
    )
    branch = revision if revision and revision != "main" else None
    if branch is not None:
        run("create_branch", lambda: api.create_branch(repo_id, branch=branch, exist_ok=True))

    message = commit_message or DEFAULT_COMMIT_MESSAGE
    # The head this commit builds on. A PR is based on it by the Hub itself, and its commit lands on a new ref.
    parent = None if create_pr else run("repo_info", lambda: _branch_head(api, repo_id, revision))
    attempted = False

    def commit() -> Any:
        nonlocal attempted
        if attempted and parent is not None:
            landed = _landed_commit(api, repo_id, revision, parent, message)
            if landed is not None:
                logger.warning("Hub commit to %s landed although its reply was lost; not committing again.", repo_id)
                return landed
        # Fresh operation objects per attempt: huggingface_hub marks them as used once committed.
        operations = [
            CommitOperationAdd(
                f"{prefix}/{name}" if prefix else name,
                replacements[name] if name in replacements else str(Path(folder) / name),
            )
            for name in files
        ]
        attempted = True
        return api.create_commit(
            repo_id,
            operations,
            commit_message=message,
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
            parent_commit=parent,
        )

    info = run("commit", commit)
    outcome = PushOutcome(
        repo_id=repo_id,
        revision=revision or "main",
        commit_url=str(info.commit_url),
        commit_oid=str(info.oid),
        pr_url=str(info.pr_url) if info.pr_url else None,
        files=[f"{prefix}/{name}" if prefix else name for name in files],
    )
    logger.info("Pushed %d files to %s: %s", len(files), repo_id, outcome.url)
    return outcome


def _branch_head(api: HfApi, repo_id: str, revision: str | None) -> str | None:
    """The commit the branch points at now (all zeros: no commit yet), or None when the Hub does not say (then no
    parent is pinned and a retried commit is not checked)."""
    sha = getattr(api.repo_info(repo_id, revision=revision or "main"), "sha", None)
    return str(sha) if sha and re.fullmatch(r"[0-9a-f]{40}", str(sha)) else None


def _landed_commit(api: HfApi, repo_id: str, revision: str | None, parent: str, message: str) -> CommitInfo | None:
    """The commit an earlier attempt made, if the branch head is a commit with our message right on top of
    ``parent``; None when the branch still points at ``parent`` (nothing landed) or moved for another reason."""
    commits = api.list_repo_commits(repo_id, revision=revision or "main")
    if not commits or commits[0].commit_id == parent:
        return None
    head = commits[0]
    previous = commits[1].commit_id if len(commits) > 1 else "0" * 40  # a branch's first commit has no parent
    if head.title != message or previous != parent:
        return None
    return CommitInfo(
        commit_url=f"{api.endpoint}/{repo_id}/commit/{head.commit_id}",
        commit_message=head.title,
        commit_description=head.message,
        oid=head.commit_id,
        _endpoint=api.endpoint,
    )


def resolve_repo_id(
    repo_id: str,
    *,
    token: str | None,
    private: bool | None = None,
    exist_ok: bool = True,
    endpoint: str | None = None,
    retry: RetryPolicy | None = None,
    token_source: str = "the token argument",
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create the repo (or find it, with ``exist_ok``) and return its full ``namespace/name`` id.

    A bare name is put in the token owner's namespace by the Hub; the card's usage snippet and every later call
    must name the repo as the Hub does, which only the Hub's answer says.
    """
    validate_repo_id(repo_id)
    api = HfApi(endpoint=resolve_endpoint(endpoint), token=token)
    created = call_with_retry(
        "create_repo",
        lambda: api.create_repo(repo_id, private=private, exist_ok=exist_ok),
        repo_id=repo_id,
        token=token,
        retry=retry or RetryPolicy(),
        token_source=token_source,
        sleep=sleep,
    )
    return str(getattr(created, "repo_id", None) or repo_id)


def card_for_repo(text: str, repo_id: str, tags: Sequence[str] | None = None) -> str:
    """A card as pushed: usage snippets name ``repo_id`` and ``tags`` are added to the YAML header."""
    from rerank_lib.model_card import set_usage_id, update_card_metadata

    return update_card_metadata(set_usage_id(text, repo_id), tags=list(tags or []))


def model_card_for_push(
    model: CrossEncoder, repo_id: str, tags: Sequence[str] | None, card_data: ModelCardData | None = None
) -> str:
    """The README a pushed model carries: the given or collected card data, else the card it was loaded with, else a
    minimal one."""
    from rerank_lib.model_card import ModelCardData, render_model_card
    from rerank_lib.model_card.collect import card_data_from_model

    if card_data is None:
        card_data = getattr(model, "model_card_data", None)
    if isinstance(card_data, ModelCardData):
        text = render_model_card(card_data, model_id=repo_id)
    elif getattr(model, "model_card_text", None):
        text = str(model.model_card_text)
    else:
        text = render_model_card(card_data_from_model(model), model_id=repo_id)
    return card_for_repo(text, repo_id, tags)


def push_to_hub(
    model: CrossEncoder,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    tags: Sequence[str] | None = None,
    exist_ok: bool = True,
    *,
    endpoint: str | None = None,
    retry: RetryPolicy | None = None,
    path_in_repo: str | None = None,
    card_data: ModelCardData | None = None,
) -> str:
    """Save the model with its card to a temporary folder and upload it in one commit.

    Returns the pull request URL when ``create_pr`` is set, else the commit URL. ``revision`` names a branch,
    which is created when missing. ``tags`` are added to the card's YAML header. ``token=None`` lets
    huggingface_hub use ``HF_TOKEN`` or the saved login. ``endpoint`` defaults to ``HF_ENDPOINT``;
    ``path_in_repo`` uploads into a folder of the repo (the trainer's checkpoint pushes). ``card_data`` (e.g. what
    a trainer collected) renders the README instead of the model's own card. A bare ``repo_id`` is resolved to the
    token owner's namespace first, so the card names the repo as it will be found.
    """
    validate_repo_id(repo_id)
    token_source = "the token argument" if token else "HF_TOKEN or the saved Hugging Face login"
    access = {"token": token, "private": private, "endpoint": endpoint, "retry": retry, "token_source": token_source}
    if "/" not in repo_id:
        repo_id = resolve_repo_id(repo_id, exist_ok=exist_ok, **access)
        exist_ok = True  # created (or checked) just now
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        model.save_pretrained(model_dir)
        card = model_card_for_push(model, repo_id, tags, card_data)
        (model_dir / "README.md").write_text(card, encoding="utf-8")
        outcome = push_folder(
            model_dir,
            repo_id,
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
            exist_ok=exist_ok,
            path_in_repo=path_in_repo,
            **access,
        )
    return outcome.url
