"""What every backend shares: names, optional-dependency checks, where exported files live and when they are stale."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rerank_lib.errors import ConfigError, RerankError

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "openvino")
QUANTIZATIONS = ("int8",)
PRECISIONS = ("fp32", "bf16")

ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
ONNX_QINT8_FILE = "model_qint8.onnx"
OPENVINO_DIR = "openvino"
OPENVINO_FILE = "openvino_model.xml"
EXPORT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",  # an adapter folder is exported merged: a newer adapter makes the export stale
)

# Modules each backend needs, and the pyproject extra that installs them.
_REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "onnx": (("onnxruntime", "onnx", "onnxscript"), "onnx"),
    "openvino": (("openvino", "onnx", "onnxscript"), "openvino"),
}


class ExportableModel(Protocol):
    """What the backends read from a loaded :class:`~rerank_lib.model.CrossEncoder`.

    A protocol rather than the class itself: the model imports the backends, so the backends must not import it.
    """

    model: nn.Module
    tokenizer: Any
    model_name_or_path: str
    trust_remote_code: bool

    @property
    def num_labels(self) -> int: ...

    @property
    def device(self) -> torch.device: ...


class MissingDependencyError(RerankError, ImportError):
    """An optional backend was asked for but its packages are not installed; the message names the extra."""


def check_backend_options(
    backend: str, quantize: str | None = None, precision: str = "fp32", num_threads: int | None = None
) -> None:
    """Reject unknown names, bad values and missing packages before any weights are loaded."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not one of {', '.join(map(repr, BACKENDS))}.")
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise ConfigError(f"quantize={quantize!r} is not one of {', '.join(map(repr, QUANTIZATIONS))} (or None).")
        if backend != "onnx":
            raise ConfigError(f"quantize={quantize!r} needs backend='onnx'; got backend={backend!r}.")
    check_precision(precision, backend)
    check_num_threads(num_threads)
    if backend in _REQUIREMENTS:
        modules, extra = _REQUIREMENTS[backend]
        missing = [name for name in modules if importlib.util.find_spec(name) is None]
        if missing:
            raise MissingDependencyError(
                f"backend={backend!r} needs the package(s) {', '.join(missing)}: "
                f"pip install 'rerank-pipeline[{extra}]' (or pip install {' '.join(missing)})."
            )


def check_precision(precision: str, backend: str = "torch") -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not one of {', '.join(map(repr, PRECISIONS))}.")
    if precision == "bf16" and backend == "onnx":
        raise ConfigError("precision='bf16' is available with backend='torch' or 'openvino', not 'onnx'.")
    return precision


def check_num_threads(num_threads: int | None) -> int | None:
    valid = isinstance(num_threads, int) and not isinstance(num_threads, bool) and num_threads >= 1
    if num_threads is not None and not valid:
        raise ConfigError(f"num_threads must be a positive integer or None, got {num_threads!r}.")
    return num_threads


def cpu_supports_bf16() -> bool:
    """True where oneDNN has fast bf16 kernels (AVX512-BF16 or AMX); elsewhere bf16 would be emulated and slower."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def new_head(model: ExportableModel, cache_dir: str | None = None) -> bool:
    """True when the scoring head was created at load time (a base model, or a changed ``num_labels``).

    Such a head is random and differs on every load, so an export of it must not be saved next to the model.
    """
    from transformers import AutoConfig

    try:
        saved = AutoConfig.from_pretrained(
            model.model_name_or_path,
            trust_remote_code=model.trust_remote_code,
            cache_dir=cache_dir,
        )
    except (OSError, ValueError):
        return True
    is_classifier = any(arch.endswith("ForSequenceClassification") for arch in (saved.architectures or []))
    return not is_classifier or int(saved.num_labels) != model.num_labels


def _weights_mtime(folder: Path) -> float | None:
    times = [(folder / name).stat().st_mtime for name in WEIGHT_FILES if (folder / name).is_file()]
    return max(times) if times else None


def is_fresh(exported: Path, model_folder: Path) -> bool:
    """An exported file is reused when it exists and is not older than the weights it was exported from."""
    if not exported.is_file():
        return False
    weights = _weights_mtime(model_folder)
    if weights is not None and exported.stat().st_mtime < weights:
        logger.warning("%s is older than the weights in %s; exporting it again.", exported, model_folder)
        return False
    return True


def hub_export_folder(model_name_or_path: str, cache_dir: str | None) -> Path:
    """Where exports of a Hub model live: ``rerank_lib-exports/<id>`` in ``cache_dir`` or the Hugging Face home.

    Kept out of the hub cache itself, whose layout huggingface_hub owns. One folder per model id (not revision): an
    export older than a re-downloaded revision is not detected, so pass a local folder where weights change.
    """
    if cache_dir is not None:
        root = Path(cache_dir)
    else:
        from huggingface_hub.constants import HF_HOME

        root = Path(HF_HOME)
    return root / "rerank_lib-exports" / model_name_or_path.replace("/", "--")


def export_folder(model: ExportableModel, cache_dir: str | None = None) -> Path:
    """The folder exported files go to and are reused from: the model's own folder when it is local."""
    source = Path(model.model_name_or_path)
    if source.is_dir():
        return source
    return hub_export_folder(model.model_name_or_path, cache_dir)


def scratch_folder(owner: Any) -> Path:
    """A temporary folder removed when ``owner`` is garbage collected: for exports that must not be reused."""
    scratch = tempfile.TemporaryDirectory(prefix="rerank_lib-export-")
    weakref.finalize(owner, scratch.cleanup)
    return Path(scratch.name)


def replace_file(staging: Path, target: Path) -> None:
    """Move a fully written file into place in one rename, so readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


@contextlib.contextmanager
def export_lock(folder: Path) -> Iterator[None]:
    """Two processes loading the same model at once export it once; the second waits and reuses the file.

    The lock file lives in one folder under the temp folder, keyed by the export folder's path, so model folders
    stay clean (a lock file there would be pushed to the Hub with the model). Lock files are not deleted on release
    (another process may be waiting on that very file), so they are gathered in one place instead of the temp root.
    """
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(export_lock_path(folder))):
        yield


def export_lock_path(folder: Path) -> Path:
    """The lock guarding exports into ``folder``: one file per folder, in ``<temp>/rerank_lib-export-locks-<uid>``.

    One lock folder per user: a folder made by one user is not writable by the others on a shared machine.
    """
    owner = os.getuid() if hasattr(os, "getuid") else "user"  # Windows: the temp folder is per user already
    locks = Path(tempfile.gettempdir()) / f"rerank_lib-export-locks-{owner}"
    locks.mkdir(exist_ok=True)
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
    return locks / f"{key}.lock"
