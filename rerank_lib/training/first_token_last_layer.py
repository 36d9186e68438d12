"""Train a BERT classifier without the last layer's work on tokens the classifier never reads.

``BertForSequenceClassification`` scores a pair from the pooler, which reads the first token ([CLS]) of the last
layer and nothing else. The last layer still needs keys and values for every token (the first token attends to all
of them), but its queries, attention output and feed-forward are only needed for the first token: about five sixths
of that layer's work, one sixth of a 6-layer encoder's, forward and backward. Inside
:func:`last_layer_first_token_only` the last layer computes just that, so the logits (and their gradients) are the
model's own, to rounding; the layer's output is the first token alone, a sequence of length 1, which the pooler reads
the same way. Only the forward of that one layer object is replaced, for the duration of the block: the weights,
their names and the saved files do not change.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import eager_attention_forward

from rerank_lib.adapters import base_model
from rerank_lib.backends.first_token_split import unsupported_reason

logger = logging.getLogger(__name__)


def _first_token_forward(
    self: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args: Any, **kwargs: Any
) -> torch.Tensor:
    """``BertLayer.forward`` for the first token only: keys and values over every token, the rest over [CLS]."""
    attention = self.attention.self
    batch, length, _ = hidden_states.shape
    first = hidden_states[:, :1]

    def heads(states: torch.Tensor) -> torch.Tensor:
        return states.view(batch, states.shape[1], -1, attention.attention_head_size).transpose(1, 2)

    query = heads(attention.query(first))
    key = heads(attention.key(hidden_states))
    value = heads(attention.value(hidden_states))
    if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[-2] == length > 1:
        attention_mask = attention_mask[:, :, :1]  # the first query row of a (batch, 1, queries, keys) mask
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = interface(
        attention,
        query,
        key,
        value,
        attention_mask,
        dropout=attention.dropout.p if attention.training else 0.0,
        scaling=attention.scaling,
    )
    attended = self.attention.output(context.reshape(batch, 1, -1), first)
    return self.feed_forward_chunk(attended)


def _last_layer(model: nn.Module) -> nn.Module | None:
    """The last encoder layer of a supported BERT classifier (a CrossEncoder or the transformers model), else None."""
    inner = base_model(getattr(model, "model", model))  # CrossEncoder keeps it in .model, maybe under an adapter
    reason = unsupported_reason(inner)
    if reason is not None:
        logger.debug("Last layer runs in full: %s.", reason)
        return None
    return inner.bert.encoder.layer[-1]


@contextmanager
def last_layer_first_token_only(model: nn.Module) -> Iterator[bool]:
    """Within the block, the last BERT layer computes the first token only (see module doc); yields whether it does.

    Models it does not cover (not a BERT sequence classifier with a pooler) are left as they are. Code that reads
    the last layer's hidden states of every token must run outside the block.
    """
    layer = _last_layer(model)
    if layer is None or "forward" in vars(layer):  # unsupported, or already inside such a block
        yield False
        return
    layer.forward = types.MethodType(_first_token_forward, layer)
    try:
        yield True
    finally:
        del layer.forward
