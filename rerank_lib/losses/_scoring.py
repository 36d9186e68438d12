"""Scoring helpers shared by the losses: every loss scores pairs through ``model.score_pairs``.

``score_pairs`` tokenizes with the model's ``max_length``, so no loss re-implements tokenization. Loss arithmetic
runs in float32 even when the model runs in bf16/fp16: sorting, softmax and log-sigmoid over half-precision scores
lose more accuracy than the model itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

Pair = tuple[str, str]


def require_single_output(model: Any, loss_name: str) -> None:
    """Ranking losses compare one relevance score per pair."""
    if model.num_labels != 1:
        raise ValueError(f"{loss_name} needs a model with num_labels=1; this one has {model.num_labels}.")


def check_mini_batch_size(loss_name: str, mini_batch_size: int | None) -> int | None:
    """``None`` (score every pair in one forward pass) or a positive number of pairs per forward pass."""
    if mini_batch_size is None:
        return None
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size < 1:
        raise ValueError(f"{loss_name}: mini_batch_size must be a positive integer or None; got {mini_batch_size!r}.")
    return mini_batch_size


def score_pairs(model: Any, pairs: Sequence[Pair], mini_batch_size: int | None = None) -> torch.Tensor:
    """One score per pair (at least float32), with gradients, at most ``mini_batch_size`` pairs per forward pass."""
    if not pairs:
        return torch.zeros(0, device=model.device)
    step = mini_batch_size or len(pairs)
    chunks = [model.score_pairs(pairs[start : start + step]).reshape(-1) for start in range(0, len(pairs), step)]
    return loss_dtype(torch.cat(chunks) if len(chunks) > 1 else chunks[0])


def loss_dtype(values: torch.Tensor) -> torch.Tensor:
    """Half-precision scores are upcast to float32 for the loss arithmetic; float32 and float64 stay as they are."""
    return values.float() if values.dtype in (torch.float16, torch.bfloat16) else values


def zero_loss(device: torch.device | str) -> torch.Tensor:
    """A zero loss that ``backward()`` accepts, for batches with nothing to learn from."""
    return torch.zeros((), device=device, requires_grad=torch.is_grad_enabled())
