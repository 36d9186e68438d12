"""Stage `push`: upload the carded model folder to the Hugging Face Hub in one commit, or do a dry run.

The token is read from an environment variable (``token_env``) or a Prefect Secret block (``secret_block``); params
only ever name where it lives. It is never logged, never written to the manifest or the result, and error messages
are redacted. Without a token, or with ``enabled: false``, the stage lists what it would upload, writes the same
manifest and reports the push as skipped. The commit message names the MLflow run and the git commit it came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rerank_lib.errors import ConfigError
from rerank_lib.hub import RetryPolicy, card_for_repo, list_folder_files, push_folder
from tasks.config import PushConfig
from tasks.io import write_json_atomic
from tasks.lineage import git_commit

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"


@dataclass(frozen=True)
class PushResult:
    """What the stage did. ``skipped_reason`` is set for a dry run; no field ever holds the token."""

    pushed: bool
    repo_id: str | None
    revision: str
    commit_message: str
    files: list[str]
    manifest_path: Path
    url: str | None = None
    commit_oid: str | None = None
    pr_url: str | None = None
    skipped_reason: str | None = None
    token_source: str | None = None
    mlflow_run_id: str = "unknown"
    git_commit: str = "unknown"

    @property
    def skipped(self) -> bool:
        return not self.pushed


def load_prefect_secret(name: str) -> str | None:
    """The value of a Prefect Secret block, or None when it cannot be loaded (logged without any value)."""
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()
    except Exception as error:  # a missing block or an unreachable Prefect API both mean "no token"
        logger.warning("Prefect Secret block %r could not be loaded (%s).", name, type(error).__name__)
        return None
    return str(value) if value else None


def resolve_token(
    cfg: PushConfig,
    environ: Mapping[str, str] | None = None,
    secret_loader: Callable[[str], str | None] = load_prefect_secret,
) -> tuple[str | None, str]:
    """(token, where it came from): the environment variable first, then the Secret block."""
    environ = os.environ if environ is None else environ
    token = (environ.get(cfg.token_env) or "").strip()
    if token:
        return token, f"environment variable {cfg.token_env}"
    if cfg.secret_block:
        token = (secret_loader(cfg.secret_block) or "").strip()
        if token:
            return token, f"Prefect Secret block {cfg.secret_block!r}"
    where = f"environment variable {cfg.token_env}"
    return None, where + (f" or Prefect Secret block {cfg.secret_block!r}" if cfg.secret_block else "")


def read_registry_record(path: Path) -> dict[str, Any]:
    """The register stage's record (``run_id``, ``model_version``, ...), or {} when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"Registry record {path} is not valid JSON: {error}") from error
    return record if isinstance(record, dict) else {}


def commit_message_for(record: Mapping[str, Any], commit: str) -> tuple[str, str]:
    """(summary, description) of the Hub commit: which MLflow run and which git commit produced the model."""
    run_id = str(record.get("run_id") or "unknown")
    version = record.get("model_version")
    summary = f"Upload reranker from MLflow run {run_id}, git commit {commit[:12]}"
    lines = [f"MLflow run: {run_id}", f"Git commit: {commit}"]
    if record.get("model_name") and version is not None:
        lines.append(f"Registered model: {record['model_name']} version {version}")
    elif version is not None:
        lines.append(f"Registered model version: {version}")
    return summary, "\n".join(lines)


def _file_entries(folder: Path, names: list[str], replacements: Mapping[str, bytes]) -> list[dict[str, Any]]:
    entries = []
    for name in names:
        if name in replacements:
            data = replacements[name]
            entries.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            continue
        digest = hashlib.sha256()
        with open(folder / name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        entries.append({"path": name, "size": (folder / name).stat().st_size, "sha256": digest.hexdigest()})
    return entries


def card_replacements(cfg: PushConfig, model_dir: Path) -> dict[str, bytes]:
    """The model card as pushed: its usage snippet and tags name the target repo."""
    card = model_dir / CARD_FILE
    if not (cfg.repo_id and card.is_file()):
        return {}
    text = card.read_text(encoding="utf-8")
    updated = card_for_repo(text, cfg.repo_id, cfg.tags)
    return {CARD_FILE: updated.encode("utf-8")} if updated != text else {}


def skip_reason(cfg: PushConfig, token: str | None, token_source: str, record: dict, registry: Path) -> str | None:
    """Why this is a dry run (None when the push goes ahead); a push without a registry record is an error."""
    if not cfg.enabled:
        return "push.enabled is false"
    if token is None:
        return f"no Hub token: set the {token_source}"
    if not record:
        raise ConfigError(f"Registry record {registry} is missing; run the register stage before pushing.")
    return None


def run_push(
    cfg: PushConfig,
    model_dir: Path,
    registry_record: Path,
    out: Path,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    secret_loader: Callable[[str], str | None] = load_prefect_secret,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Push ``model_dir`` to ``cfg.repo_id`` (or dry-run) and write the manifest JSON to ``out``.

    ``root`` is the git checkout whose commit is named (default: the current directory); ``environ`` and
    ``secret_loader`` exist so tests and flows can supply the token's sources explicitly.
    """
    model_dir, out = Path(model_dir), Path(out)
    record = read_registry_record(registry_record)
    commit = git_commit(Path(root) if root is not None else Path.cwd())
    summary, description = commit_message_for(record, commit)
    token, token_source = resolve_token(cfg, environ, secret_loader)
    replacements = card_replacements(cfg, model_dir)
    names = sorted(set(list_folder_files(model_dir)) | set(replacements))
    reason = skip_reason(cfg, token, token_source, record, registry_record)
    manifest: dict[str, Any] = {
        "pushed": False,
        "dry_run": reason is not None,
        "skipped_reason": reason,
        "repo_id": cfg.repo_id,
        "revision": cfg.revision or "main",
        "create_pr": cfg.create_pr,
        "private": cfg.private,
        "commit_message": summary,
        "commit_description": description,
        "mlflow_run_id": str(record.get("run_id") or "unknown"),
        "model_version": record.get("model_version"),
        "git_commit": commit,
        "token_source": token_source if token else None,
        "files": _file_entries(model_dir, names, replacements),
    }
    result_fields = {
        "repo_id": cfg.repo_id,
        "revision": cfg.revision or "main",
        "commit_message": summary,
        "files": names,
        "manifest_path": out,
        "mlflow_run_id": manifest["mlflow_run_id"],
        "git_commit": commit,
    }
    if reason is not None:
        logger.info("Push skipped (%s). Dry run: %d files would go to %s:", reason, len(names), cfg.repo_id)
        for entry in manifest["files"]:
            logger.info("  %s (%d bytes)", entry["path"], entry["size"])
        write_json_atomic(out, manifest)
        return PushResult(pushed=False, skipped_reason=reason, **result_fields)
    return _push(cfg, model_dir, token, token_source, replacements, manifest, result_fields, sleep)


def _push(
    cfg: PushConfig,
    model_dir: Path,
    token: str | None,
    token_source: str,
    replacements: dict[str, bytes],
    manifest: dict[str, Any],
    result_fields: dict[str, Any],
    sleep: Callable[[float], None],
) -> PushResult:
    """The upload itself (with retries), then the manifest with the commit it made."""
    assert cfg.repo_id is not None and token is not None  # guaranteed by the config validator and skip_reason
    outcome = push_folder(
        model_dir,
        cfg.repo_id,
        token=token,
        private=cfg.private,
        commit_message=manifest["commit_message"],
        commit_description=manifest["commit_description"],
        revision=cfg.revision,
        create_pr=cfg.create_pr,
        endpoint=cfg.endpoint,
        retry=RetryPolicy(attempts=cfg.max_attempts, base_delay=cfg.backoff_seconds),
        token_source=token_source,
        replacements=replacements,
        sleep=sleep,
    )
    manifest.update(
        pushed=True,
        url=outcome.url,
        commit_url=outcome.commit_url,
        commit_oid=outcome.commit_oid,
        pr_url=outcome.pr_url,
    )
    write_json_atomic(result_fields["manifest_path"], manifest)
    logger.info("Pushed %d files to %s (%s).", len(result_fields["files"]), cfg.repo_id, outcome.url)
    return PushResult(
        pushed=True,
        url=outcome.url,
        commit_oid=outcome.commit_oid,
        pr_url=outcome.pr_url,
        token_source=token_source,
        **result_fields,
    )


def result_summary(result: PushResult) -> dict[str, Any]:
    """A JSON-friendly view of the result for flow outputs and logs."""
    data = asdict(result)
    data["manifest_path"] = str(result.manifest_path)
    data["skipped"] = result.skipped
    return data
