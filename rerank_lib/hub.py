"""Push a CrossEncoder to the Hugging Face Hub (or any Hub-compatible endpoint)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import HfApi

from rerank_lib.errors import ConfigError

if TYPE_CHECKING:
    from rerank_lib.model import CrossEncoder

REPO_ID_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def validate_repo_id(repo_id: str) -> str:
    """Reject an invalid repo id before any upload starts."""
    if not REPO_ID_PATTERN.match(repo_id) or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise ConfigError(
            f"Invalid Hub repo id {repo_id!r}: expected 'namespace/name' of letters, digits, '-', '_', '.'."
        )
    return repo_id


def push_to_hub(
    model: CrossEncoder,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload CrossEncoder",
    revision: str | None = None,
    endpoint: str | None = None,
    **kwargs: Any,
) -> str:
    """Save the model to a temporary folder and upload it as one commit; returns the commit URL."""
    validate_repo_id(repo_id)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        model.save_pretrained(model_dir)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=model_dir,
            commit_message=commit_message,
            revision=revision,
            **kwargs,
        )
    return str(info)
