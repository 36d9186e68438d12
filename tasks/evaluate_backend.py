"""Which engine scores the trained cross-encoder in the evaluate stage: the fastest here that keeps its numbers.

``evaluate.backend: auto`` times fp32 torch and the fp32 exports this machine can run (ONNX Runtime, OpenVINO) on
a calibration sample of the pairs to be scored, and keeps the fastest whose scores all stay within
``evaluate.backend_tolerance`` of fp32 torch's (1e-4 by default: far below a change that reorders candidates enough
to move NDCG@10 by 0.001). bf16 and int8 are never picked by ``auto``: their score errors move ranking metrics by
about 0.001-0.002 (the README's speed table), more than evaluation may; name them explicitly
(``evaluate.backend``, ``evaluate.precision``, ``evaluate.quantize``) to use them. Small suites, where an export
costs more than it saves, stay with torch. The choice, and why, goes into report.json and the MLflow run.

Exports are written into a scratch view of the model folder (its files linked, not copied), so evaluating never
changes the trained model's folder, which DVC tracks.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rerank_lib.package import CROSS_ENCODER_FOLDER, is_package, load_reranker
from tasks.evaluate_config import EvaluateConfig

logger = logging.getLogger(__name__)

CALIBRATION_PAIRS = 256
FP32_CANDIDATES = ("onnx", "openvino")


@dataclass
class ScoringChoice:
    """The engine that scored the model, and how it was chosen."""

    backend: str = "torch"
    precision: str = "fp32"
    quantize: str | None = None
    reason: str = ""
    seconds_per_pair: dict[str, float] = field(default_factory=dict)
    max_score_difference: dict[str, float] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        return {"backend": self.backend, "precision": self.precision, "quantize": self.quantize}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scratch_view(model_dir: Path) -> Path:
    """A temporary folder whose files link to the model folder's: exports land there, not in the model folder.

    A package's ``cross_encoder/`` (where its exports land) is a real folder of links too.
    """
    view = Path(tempfile.mkdtemp(prefix="rerank-eval-model-"))
    _link_items(Path(model_dir), view, descend=CROSS_ENCODER_FOLDER if is_package(model_dir) else None)
    return view


def _link_items(source: Path, target: Path, descend: str | None) -> None:
    for item in source.iterdir():
        if item.name == descend:
            (target / item.name).mkdir()
            _link_items(item, target / item.name, descend=None)
        else:
            (target / item.name).symlink_to(item.resolve(), target_is_directory=item.is_dir())


def cross_encoder_part(folder: Path) -> Path:
    """The folder that holds the cross-encoder: a package's ``cross_encoder/``, else the folder itself."""
    return folder / CROSS_ENCODER_FOLDER if is_package(folder) else folder


def available(backend: str) -> bool:
    module = {"onnx": "onnxruntime", "openvino": "openvino"}[backend]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def choose_backend(
    cfg: EvaluateConfig, model_dir: Path, sample: list[tuple[str, str]], total_pairs: int
) -> tuple[ScoringChoice, Path | None]:
    """The engine for this evaluation, and the scratch folder it loads from (None: the model folder itself)."""
    if cfg.backend != "auto":
        choice = ScoringChoice(cfg.backend, cfg.precision, cfg.quantize, reason="evaluate.backend")
        return choice, scratch_view(model_dir) if cfg.backend != "torch" else None
    if total_pairs < cfg.backend_auto_min_pairs or not sample:
        reason = f"auto: {total_pairs} pairs, below {cfg.backend_auto_min_pairs}: an export would not pay off"
        return ScoringChoice(reason=reason), None
    view = scratch_view(model_dir)
    choice = calibrate(cross_encoder_part(view), sample[:CALIBRATION_PAIRS], cfg.backend_tolerance)
    logger.info("Evaluation scores with %s %s (%s).", choice.backend, choice.precision, choice.reason)
    return choice, view


def calibrate(view: Path, sample: list[tuple[str, str]], tolerance: float) -> ScoringChoice:
    """Time fp32 torch and each available fp32 export on ``sample``; keep the fastest within ``tolerance``."""
    reference, seconds = _timed(view, sample, "torch")
    choice = ScoringChoice(seconds_per_pair={"torch": seconds})
    best = seconds
    for backend in (b for b in FP32_CANDIDATES if available(b)):
        scores, seconds = _timed(view, sample, backend)
        difference = float(np.max(np.abs(scores - reference)))
        choice.seconds_per_pair[backend] = seconds
        choice.max_score_difference[backend] = difference
        if difference <= tolerance and seconds < best:
            choice.backend, best = backend, seconds
    kept = {b: d for b, d in choice.max_score_difference.items() if d <= tolerance}
    choice.reason = (
        f"auto: the fastest on {len(sample)} calibration pairs among fp32 torch and the fp32 exports within "
        f"{tolerance:g} of torch's scores ({', '.join(kept) or 'none'})"
    )
    return choice


def _timed(view: Path, sample: list[tuple[str, str]], backend: str) -> tuple[np.ndarray, float]:
    model = load_reranker(view, backend=backend)
    model.predict(sample[:8])  # warm-up: first-call allocations are not the engine's speed
    started = time.perf_counter()
    scores = np.asarray(model.predict(sample), dtype=np.float64)
    return scores, (time.perf_counter() - started) / len(sample)


def remove_view(view: Path | None) -> None:
    if view is not None:
        shutil.rmtree(view, ignore_errors=True)
