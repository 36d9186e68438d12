"""Activation functions stored as import paths, so model files stay compatible with sentence-transformers.

A path from a downloaded model is code we would import: only ``torch.*`` paths are trusted by default.
"""

from __future__ import annotations

import importlib
import logging

from torch import nn

logger = logging.getLogger(__name__)


def activation_to_path(activation_fn: nn.Module) -> str:
    """The fully qualified class path, e.g. ``torch.nn.modules.activation.Sigmoid``."""
    cls = type(activation_fn)
    return f"{cls.__module__}.{cls.__qualname__}"


def default_activation(num_labels: int) -> nn.Module:
    """Sigmoid turns a single relevance logit into a score in (0, 1); several labels stay raw logits."""
    return nn.Sigmoid() if num_labels == 1 else nn.Identity()


def activation_from_path(path: str, num_labels: int, trust_remote_code: bool = False) -> nn.Module:
    """Import and instantiate the activation at ``path``; fall back to the default when it is not trusted."""
    if not path.startswith("torch.") and not trust_remote_code:
        logger.warning(
            "Activation function %r is outside torch and trust_remote_code=False; "
            "using the default activation instead.",
            path,
        )
        return default_activation(num_labels)
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        activation = cls()
    except (ImportError, AttributeError, TypeError) as error:
        logger.warning("Could not load activation function %r (%s); using the default.", path, error)
        return default_activation(num_labels)
    if not isinstance(activation, nn.Module):
        logger.warning("Activation %r is not a torch.nn.Module; using the default.", path)
        return default_activation(num_labels)
    return activation
