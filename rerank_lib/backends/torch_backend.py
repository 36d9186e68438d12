"""Torch inference settings for ``CrossEncoder.predict``: bf16 autocast where the hardware has it, and a thread knob.

Nothing here runs at import: thread counts are process-wide in torch, so they are changed only for the duration of
a ``predict`` call that asks for it, and restored afterwards.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn

from rerank_lib.backends._common import check_precision, cpu_supports_bf16

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def bf16_supported(device: torch.device) -> bool:
    """bf16 pays off only with native kernels: AVX512-BF16/AMX on CPU, Ampere or newer on CUDA."""
    if device.type == "cpu":
        return cpu_supports_bf16()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


def scoring_head(model: nn.Module, num_labels: int) -> nn.Linear | None:
    """The last linear layer with ``num_labels`` outputs: the head whose logits become the scores."""
    heads = [
        module for module in model.modules() if isinstance(module, nn.Linear) and module.out_features == num_labels
    ]
    return heads[-1] if heads else None


@contextlib.contextmanager
def _fp32_module(module: nn.Module, device_type: str) -> Iterator[None]:
    """Run ``module`` outside autocast on fp32 inputs: bf16 logits have 3 significant digits and would tie scores."""
    own_forward = module.forward

    def forward(*args: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, enabled=False):
            return own_forward(*(arg.float() for arg in args))

    patched_before = "forward" in module.__dict__  # e.g. accelerate's autocast wrapper: put it back afterwards
    module.forward = forward
    try:
        yield
    finally:
        if patched_before:
            module.forward = own_forward
        else:
            del module.forward


@contextlib.contextmanager
def torch_inference(
    device: torch.device, precision: str = "fp32", num_threads: int | None = None, head: nn.Module | None = None
) -> Iterator[None]:
    """Run the enclosed forward passes with ``precision`` and, on CPU, ``num_threads`` intra-op threads.

    bf16 uses autocast, so the weights stay fp32 (training and saving are unaffected), and ``head`` (the scoring
    layer) stays in fp32. Where the device has no native bf16 it falls back to fp32 with a one-time warning rather
    than run an emulated, slower bf16.
    """
    check_precision(precision)
    with contextlib.ExitStack() as stack:
        if num_threads is not None and device.type == "cpu" and num_threads != torch.get_num_threads():
            stack.callback(torch.set_num_threads, torch.get_num_threads())
            torch.set_num_threads(num_threads)
        if precision == "bf16":
            if bf16_supported(device):
                stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
                if head is not None:
                    stack.enter_context(_fp32_module(head, device.type))
            elif device.type not in _warned:
                _warned.add(device.type)
                logger.warning("precision='bf16' is not natively supported on %s; predicting in fp32.", device)
        yield
