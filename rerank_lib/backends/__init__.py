"""Inference backends for ``CrossEncoder``: torch (default), ONNX Runtime and OpenVINO, plus dynamic int8 quantization.

``CrossEncoder(path, backend="onnx")`` exports ``<path>/onnx/model.onnx`` on first load and reuses it afterwards
(``quantize="int8"``: ``onnx/model_qint8.onnx``; ``backend="openvino"``: ``openvino/openvino_model.xml``). An export
older than the folder's weights is redone. The torch weights stay loaded next to the runtime, for ``save_pretrained``,
training and re-export; the backend only replaces the forward pass of ``predict`` and ``rank``, so retraining the
in-memory model does not change what the backend scores: save it and load it again.

ONNX Runtime and OpenVINO are optional: ``pip install 'rerank-pipeline[onnx]'`` or ``'rerank-pipeline[openvino]'``.
Nothing in this package imports them until a backend is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from rerank_lib.backends._common import (
    BACKENDS,
    ONNX_DIR,
    ONNX_FILE,
    ONNX_QINT8_FILE,
    OPENVINO_DIR,
    OPENVINO_FILE,
    PRECISIONS,
    QUANTIZATIONS,
    ExportableModel,
    MissingDependencyError,
    check_backend_options,
    check_precision,
    export_folder,
    new_head,
    scratch_folder,
)
from rerank_lib.backends.onnx import export_dynamic_quantized_onnx_model, export_onnx_model
from rerank_lib.backends.openvino import export_openvino_model
from rerank_lib.backends.torch_backend import bf16_supported, scoring_head, torch_inference

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "ONNX_DIR",
    "ONNX_FILE",
    "ONNX_QINT8_FILE",
    "OPENVINO_DIR",
    "OPENVINO_FILE",
    "PRECISIONS",
    "QUANTIZATIONS",
    "BackendRunner",
    "MissingDependencyError",
    "bf16_supported",
    "check_backend_options",
    "check_precision",
    "export_dynamic_quantized_onnx_model",
    "export_onnx_model",
    "export_openvino_model",
    "load_backend",
    "scoring_head",
    "torch_inference",
]


class BackendRunner(Protocol):
    """What ``CrossEncoder.predict`` needs from a non-torch backend."""

    path: Path

    def logits(self, features: Mapping[str, np.ndarray], precision: str) -> torch.Tensor:
        """Float32 logits of shape (batch, num_labels) for one padded batch (``rerank_lib.batching``)."""
        ...


def load_backend(
    model: ExportableModel,
    backend: str,
    quantize: str | None = None,
    precision: str = "fp32",
    num_threads: int | None = None,
    cache_dir: str | None = None,
) -> BackendRunner | None:
    """The runner for ``backend`` on ``model``'s weights, exporting them first where no up-to-date export exists.

    A scoring head created at load time (a base model such as all-MiniLM-L6-v2) is random and new on every load,
    so its export goes to a temporary folder instead of next to the model: save the model, then load that folder.
    """
    check_backend_options(backend, quantize, precision, num_threads)
    if backend == "torch":
        return None
    if new_head(model, cache_dir):
        logger.warning(
            "%s has no trained scoring head of %d output(s); the %s export of this randomly initialised head is "
            "temporary and not reused. Save the model and load the saved folder to export it once.",
            model.model_name_or_path,
            model.num_labels,
            backend,
        )
        folder = scratch_folder(model)
    else:
        folder = export_folder(model, cache_dir)
    if backend == "onnx":
        from rerank_lib.backends.onnx import OnnxRuntimeRunner

        if quantize == "int8":
            path = export_dynamic_quantized_onnx_model(model, folder)
        else:
            path = export_onnx_model(model, folder)
        return OnnxRuntimeRunner(path, num_threads, str(model.device))
    from rerank_lib.backends.openvino import OpenVINORunner

    return OpenVINORunner(export_openvino_model(model, folder), num_threads, precision)
