"""ONNX export (fp32 and dynamic int8) and ONNX Runtime inference.

The graph is traced by the TorchScript exporter (``torch.onnx.export(dynamo=False)``) from a copy of the model switched
to eager attention. With transformers 5's default SDPA attention that exporter bakes the example batch's padding into
the attention mask (scores drift by ~1e-2 on other shapes); eager attention builds the additive mask from tensors alone,
so batch and sequence length stay symbolic and scores match torch to ~1e-6 on any shape. Compared with the dynamo
exporter, the traced graph has no NaN guards around each softmax and ONNX Runtime fuses it better: on 2 CPU cores the
dynamically quantized int8 graph scores about 1.6x as many pairs per second (measured with benchmarks/speed.py).

The int8 file of a BERT classifier is quantized from a different trace, ``first_token_split.FirstTokenSplitBert``,
which gives the [CLS] token's outsized activations their own quantization scale (benchmarks/int8_error.py).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rerank_lib.backends._common import (
    EXPORT_INPUTS,
    ONNX_DIR,
    ONNX_FILE,
    ONNX_QINT8_FILE,
    ExportableModel,
    export_lock,
    is_fresh,
    replace_file,
)
from rerank_lib.backends.first_token_split import split_first_token

logger = logging.getLogger(__name__)

# ONNX opset of the exported graph: LayerNormalization (17) is a single op ONNX Runtime fuses with the residual add.
_OPSET = 17


class _LogitsOnly(nn.Module):
    """The classifier with positional tensor inputs and one output: the shape an exported graph needs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_input_names(model: ExportableModel) -> list[str]:
    """The tokenizer outputs the graph takes, in ``_LogitsOnly.forward`` order (no token_type_ids for RoBERTa)."""
    produced = set(model.tokenizer.model_input_names)
    names = [name for name in EXPORT_INPUTS if name in produced]
    if names[:1] != ["input_ids"]:
        raise ValueError(f"Cannot export a model whose tokenizer gives {sorted(produced)}; input_ids is needed.")
    return names


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(fragment in record.getMessage() for fragment in self.fragments)


@contextlib.contextmanager
def _quiet(logger_name: str, *fragments: str) -> Iterator[None]:
    """Drop known-irrelevant log lines of a dependency (e.g. "torchvision is not installed") for one call."""
    target = logging.getLogger(logger_name)
    dropper = _DropMessages(*fragments)
    target.addFilter(dropper)
    try:
        yield
    finally:
        target.removeFilter(dropper)


def _export_module(model: ExportableModel) -> nn.Module:
    """A float32 CPU copy of the classifier with eager attention (see the module docstring)."""
    copied = copy.deepcopy(model.model).to("cpu", torch.float32).eval()
    if hasattr(copied, "set_attn_implementation"):
        copied.set_attn_implementation("eager")
    return copied


def _trace(model: ExportableModel, module: nn.Module, target: Path) -> None:
    """Trace ``module`` (positional tokenizer tensors in, logits out) to ``target`` with symbolic batch and length."""
    names = export_input_names(model)
    # Two pairs of different lengths: a batch of 1 or an unpadded batch would let the exporter specialise shapes.
    example = model.tokenizer(
        ["what is the capital city", "who"],
        ["the capital city is a big city with many people", "nobody"],
        padding=True,
        return_tensors="pt",
    )
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic_axes["logits"] = {0: "batch"}
    # The tracer warns about Python values it folds (shapes, dtype checks): none depends on the batch.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(example[name] for name in names),
            str(target),
            dynamo=False,
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=_OPSET,
        )


def _write_onnx(model: ExportableModel, target: Path) -> Path:
    """Export the fp32 graph to ``target`` (atomically) with symbolic batch and sequence axes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as staging:
        staged = Path(staging) / target.name
        _trace(model, _LogitsOnly(_export_module(model)), staged)
        for produced in sorted(Path(staging).iterdir()):  # side files (weights above 2 GiB) first, then the graph
            if produced != staged:
                replace_file(produced, target.parent / produced.name)
        replace_file(staged, target)
    logger.info("Exported %s to %s.", model.model_name_or_path, target)
    return target


def _inline_weight_identities(path: Path) -> None:
    """Point nodes straight at initializers the tracer routed through Identity nodes.

    A weight used by two products (first-token split) is exported once plus an Identity for the second use; ONNX
    Runtime's quantizer only quantizes products whose weight is an initializer, so it would leave those in fp32.
    """
    import onnx

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    initializers = {initializer.name for initializer in graph.initializer}
    alias = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "Identity"}
    alias = {output: source for output, source in alias.items() if source in initializers}
    kept = [node for node in graph.node if not (node.op_type == "Identity" and node.output[0] in alias)]
    for node in kept:
        for position, name in enumerate(node.input):
            if name in alias:
                node.input[position] = alias[name]
    del graph.node[:]
    graph.node.extend(kept)
    onnx.save(graph_model, str(path))


def _write_quantized(model: ExportableModel, fp32: Path, target: Path, per_channel: bool) -> Path:
    """Quantize to ``target``: from the first-token-split graph where the architecture allows it, else from ``fp32``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=target.parent) as staging:
        source = fp32
        split = split_first_token(_export_module(model)) if "attention_mask" in export_input_names(model) else None
        if split is not None:
            source = Path(staging) / "first_token_split.onnx"
            _trace(model, split, source)
            _inline_weight_identities(source)
        else:
            logger.info("No first-token split for this architecture: quantizing the plain graph.")
        staged = Path(staging) / target.name
        # ORT suggests shape pre-processing (symbolic shape inference): it gains nothing on these graphs.
        with warnings.catch_warnings(), _quiet("", "pre-processing before quantization"):
            warnings.simplefilter("ignore")
            quantize_dynamic(source, staged, weight_type=QuantType.QInt8, per_channel=per_channel)
        replace_file(staged, target)
    logger.info("Wrote the dynamically quantized int8 model %s.", target)
    return target


def export_onnx_model(model: ExportableModel, path: str | Path, force: bool = False) -> Path:
    """Export ``model`` as ``<path>/onnx/model.onnx`` (fp32) unless an up-to-date file is there; return its path."""
    folder = Path(path)
    target = folder / ONNX_DIR / ONNX_FILE
    with export_lock(target.parent):
        if force or not is_fresh(target, folder):
            _write_onnx(model, target)
    return target


def export_dynamic_quantized_onnx_model(
    model: ExportableModel, path: str | Path, per_channel: bool = True, force: bool = False
) -> Path:
    """Write ``<path>/onnx/model_qint8.onnx``: int8 weights, activations quantized on the fly (no calibration data).

    The fp32 export next to it is made first when missing. BERT classifiers are quantized from a graph that multiplies
    the first token and the other tokens separately (``first_token_split``: half the score error, no slower); other
    architectures from the plain fp32 graph. ``per_channel`` keeps one weight scale per output row, which preserves
    rankings better than one scale per matrix at no speed cost. Returns the quantized file's path.
    """
    folder = Path(path)
    fp32 = folder / ONNX_DIR / ONNX_FILE
    target = folder / ONNX_DIR / ONNX_QINT8_FILE
    with export_lock(target.parent):
        if force or not is_fresh(fp32, folder):
            _write_onnx(model, fp32)
            force = True  # a new fp32 graph makes any old quantized file stale
        if force or not is_fresh(target, folder):
            _write_quantized(model, fp32, target, per_channel)
    return target


class OnnxRuntimeRunner:
    """Scores tokenized batches with an ONNX Runtime session; ``num_threads`` sets the session's intra-op threads."""

    def __init__(self, path: Path, num_threads: int | None = None, device: str = "cpu") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.path = path
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.input_names = [item.name for item in self.session.get_inputs()]

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.ascontiguousarray(features[name], dtype=np.int64) for name in self.input_names}
        return self.session.run(None, feed)[0]

    def logits(self, features: Mapping[str, np.ndarray], precision: str) -> torch.Tensor:
        """Score one padded batch; float32 logits of shape (batch, num_labels)."""
        del precision  # checked at load time: ONNX Runtime runs the graph's own precision
        return torch.from_numpy(self(features))
