"""Layer-wise learning-rate decay: lower layers of the encoder move less than the top ones and the head.

Why: the base model's lower layers hold general language knowledge (for MiniLM, what its bi-encoder training
learned); a small reranking set pulls every layer towards its own domain. Scaling each layer's learning rate by
``decay ** depth`` (the head at depth 0, the top encoder layer at 1, the embeddings deepest) keeps more of that
knowledge while the head and top layers learn the task.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from torch import nn

_LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")


def parameter_depth(name: str, num_layers: int) -> int:
    """Steps below the head: 0 for the head and pooler, 1 for the top layer, ``num_layers + 1`` for embeddings."""
    match = _LAYER_INDEX.search(name)
    if match:
        return num_layers - int(match.group(1))
    if "embed" in name:
        return num_layers + 1
    return 0


def count_layers(names: Iterable[str]) -> int:
    """The number of numbered encoder layers among parameter names (0 when the model has none)."""
    indices = [int(match.group(1)) for name in names if (match := _LAYER_INDEX.search(name))]
    return max(indices) + 1 if indices else 0


def layerwise_parameter_groups(
    model: nn.Module,
    learning_rate: float,
    decay: float,
    weight_decay: float,
    decay_parameter_names: Iterable[str],
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with ``lr = learning_rate * decay ** depth`` (one group per depth and decay kind).

    Each group carries its own ``lr``, so transformers' schedulers (which scale every group's initial rate) keep
    the ratios through warmup and decay.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"layerwise_lr_decay must be in (0, 1], got {decay!r}.")
    with_decay = set(decay_parameter_names)
    named = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    num_layers = count_layers(name for name, _ in named)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in named:
        depth = parameter_depth(name, num_layers)
        decays = name in with_decay
        group = groups.setdefault(
            (depth, decays),
            {"params": [], "lr": learning_rate * decay**depth, "weight_decay": weight_decay if decays else 0.0},
        )
        group["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]
