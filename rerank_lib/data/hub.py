"""Hugging Face Hub datasets as tables, read offline from the local ``datasets`` cache by default.

Training machines here do not reach the Hub, and a pipeline that silently re-downloads can change its data under
the same config. So the default is offline: ``datasets.load_dataset`` only finds what an earlier, connected run
stored in ``cache_dir``. Offline mode is switched on for the duration of the call only (``datasets`` reads
``HF_HUB_OFFLINE`` once, at import, so the environment variable alone would come too late).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd

from rerank_lib.errors import DataValidationError


@contextlib.contextmanager
def hub_offline(enabled: bool = True) -> Iterator[None]:
    """Make ``datasets`` and ``huggingface_hub`` refuse network access inside the block, then restore."""
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved[0], saved[1]
        if saved[2] is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved[2]


def load_hub_dataset(
    repo_id: str,
    config: str | None = None,
    split: str = "train",
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    offline: bool = True,
    dataset: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``load_dataset(repo_id, config, split=split)`` as a DataFrame, and facts for a manifest (fingerprint, rows)."""
    import datasets

    name = dataset or repo_id
    try:
        with hub_offline(offline):
            loaded = datasets.load_dataset(
                repo_id,
                config,
                split=split,
                revision=revision,
                cache_dir=None if cache_dir is None else str(cache_dir),
            )
    except (ConnectionError, FileNotFoundError, ValueError) as error:
        where = f"cache {cache_dir}" if cache_dir else "the default datasets cache"
        hint = " (offline: run once on a connected machine to fill the cache)" if offline else ""
        raise DataValidationError(
            f"dataset {name!r}: cannot load Hub dataset {repo_id!r} config={config!r} split={split!r} from "
            f"{where}{hint}: {error}"
        ) from error
    facts = {
        "repo_id": repo_id,
        "config": config,
        "split": split,
        "revision": revision,
        "fingerprint": getattr(loaded, "_fingerprint", None),
        "rows": loaded.num_rows,
    }
    return loaded.to_pandas(), facts
