"""OpenVINO export and inference.

The OpenVINO IR is converted from our ONNX export (the fp32 ``onnx/model.onnx`` when it is already there), so both
backends run the same graph. Weights are stored in fp32, and inference runs in fp32 unless ``precision="bf16"``:
OpenVINO would otherwise pick bf16 by itself on CPUs with AMX or AVX512-BF16 and scores would drift from torch.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rerank_lib.backends._common import (
    ONNX_DIR,
    ONNX_FILE,
    OPENVINO_DIR,
    OPENVINO_FILE,
    ExportableModel,
    export_lock,
    is_fresh,
    replace_file,
)
from rerank_lib.backends.onnx import _write_onnx

logger = logging.getLogger(__name__)

_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


def export_openvino_model(model: ExportableModel, path: str | Path, force: bool = False) -> Path:
    """Write ``<path>/openvino/openvino_model.xml`` (+ ``.bin``) unless an up-to-date one is there; return its path."""
    import openvino as ov

    folder = Path(path)
    target = folder / OPENVINO_DIR / OPENVINO_FILE
    with export_lock(target.parent):
        if not force and is_fresh(target, folder) and is_fresh(target.with_suffix(".bin"), folder):
            return target
        with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as staging:
            onnx_file = folder / ONNX_DIR / ONNX_FILE
            if force or not is_fresh(onnx_file, folder):
                onnx_file = _write_onnx(model, Path(staging) / "onnx" / ONNX_FILE)
            converted = ov.convert_model(str(onnx_file))
            staged = Path(staging) / OPENVINO_FILE
            ov.save_model(converted, str(staged), compress_to_fp16=False)
            replace_file(staged.with_suffix(".bin"), target.with_suffix(".bin"))  # weights first, graph last
            replace_file(staged, target)
    logger.info("Exported %s to %s.", model.model_name_or_path, target)
    return target


class OpenVINORunner:
    """Scores tokenized batches with an OpenVINO model compiled for the CPU, once per precision used."""

    def __init__(self, path: Path, num_threads: int | None = None, precision: str = "fp32") -> None:
        import openvino as ov

        self.path = path
        self.num_threads = num_threads
        self._core = ov.Core()
        self._model = self._core.read_model(str(path))
        self._compiled: dict[str, Any] = {}
        self._compile(precision)

    def _compile(self, precision: str) -> Any:
        if precision not in self._compiled:
            config: dict[str, Any] = {
                "INFERENCE_PRECISION_HINT": _PRECISION_HINTS[precision],
                "PERFORMANCE_HINT": "LATENCY",  # one request at a time: all threads on each batch
            }
            if self.num_threads is not None:
                config["INFERENCE_NUM_THREADS"] = self.num_threads
            compiled = self._core.compile_model(self._model, "CPU", config)
            inputs = [port.get_any_name() for port in compiled.inputs]
            self._compiled[precision] = (compiled.create_infer_request(), compiled.output(0), inputs)
        return self._compiled[precision]

    def __call__(self, features: Mapping[str, np.ndarray], precision: str = "fp32") -> np.ndarray:
        request, output, inputs = self._compile(precision)
        feed = {name: np.ascontiguousarray(features[name], dtype=np.int64) for name in inputs}
        return np.array(request.infer(feed)[output], dtype=np.float32)

    def logits(self, features: Mapping[str, np.ndarray], precision: str) -> torch.Tensor:
        """Score one padded batch; float32 logits of shape (batch, num_labels)."""
        return torch.from_numpy(self(features, precision))
