"""MultipleNegativesRankingLoss with exact gradient caching: large batches in mini-batch memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from rerank_lib.losses._scoring import check_mini_batch_size
from rerank_lib.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from rerank_lib.model import CrossEncoder


@dataclass
class _RngState:
    """Random state before a mini-batch's first forward pass, so the replay draws the same dropout masks."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None
    device: torch.device

    @classmethod
    def capture(cls, device: torch.device) -> _RngState:
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(cpu=torch.get_rng_state(), cuda=cuda, device=device)

    @contextmanager
    def restored(self) -> Iterator[None]:
        """Run with this state, then put the global state back as it was (the replay must not shift it)."""
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


@dataclass
class _Replay:
    """Everything the backward pass needs to re-run the mini-batches exactly as the no-grad pass ran them."""

    model: nn.Module
    features: list[dict[str, torch.Tensor]]
    rng_states: list[_RngState]
    sizes: list[int]
    device_type: str
    autocast_enabled: bool
    autocast_dtype: torch.dtype

    def backward(self, grad_logits: torch.Tensor) -> None:
        """Second forward pass, one mini-batch at a time, each followed at once by its backward pass."""
        start = 0
        with torch.enable_grad():
            for features, rng_state, size in zip(self.features, self.rng_states, self.sizes, strict=True):
                autocast = torch.autocast(self.device_type, dtype=self.autocast_dtype, enabled=self.autocast_enabled)
                with rng_state.restored(), autocast:
                    logits = self.model(**features).reshape(-1)
                torch.autograd.backward(logits, grad_logits[start : start + size].to(logits.dtype))
                start += size


class _GradCachedLogits(torch.autograd.Function):
    """Identity on the cached logits whose backward replays the model with the incoming d loss / d logits.

    Calling the replay from ``backward`` (not from the loss's ``forward``) means the trainer's ordinary
    ``loss.backward()`` drives it, with any loss scaling (gradient accumulation, fp16 scaler) already applied.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, replay: _Replay) -> torch.Tensor:
        ctx.replay = replay
        return logits.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_logits: torch.Tensor) -> tuple[None, None]:
        replay, ctx.replay = ctx.replay, None  # free the cached token tensors once used
        replay.backward(grad_logits)
        return None, None


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """MultipleNegativesRankingLoss whose memory is bounded by ``mini_batch_size`` pairs, with the same gradients.

    In-batch negatives get better with batch size, but scoring ``batch * (1 + negatives)`` pairs with gradients
    needs activation memory for all of them at once. Gradient caching (GradCache) splits the work:

    1. score every pair without gradients, ``mini_batch_size`` pairs per forward pass, keeping only the logits;
    2. compute the loss from those logits; ``loss.backward()`` yields d loss / d logits;
    3. re-run each mini-batch with gradients (same tokens, same dropout masks, same autocast) and backpropagate its
       slice of d loss / d logits into the model, one mini-batch at a time.

    The loss value and the parameter gradients equal MultipleNegativesRankingLoss's for the same in-batch negatives
    (up to float rounding), at any ``mini_batch_size``; the cost is a second forward pass.

    | inputs | labels |
    |---|---|
    | (anchor, positive) | none |
    | (anchor, positive, negative_1, ..., negative_n) | none |

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        num_negatives: in-batch negatives per anchor, sampled without replacement; ``None`` uses all of them.
        scale: multiplies the activated scores; the softmax temperature is ``1 / scale``.
        activation_fn: bounds the logits before scaling.
        mini_batch_size: pairs per forward pass; bounds memory, not the result.

    References:
        - Gao et al., Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup, 2021:
          https://arxiv.org/abs/2101.06983
        - Henderson et al., Efficient Natural Language Response Suggestion for Smart Reply, 2017:
          https://arxiv.org/abs/1705.00652

    Example::

        loss = CachedMultipleNegativesRankingLoss(model, num_negatives=8, mini_batch_size=32)
        trainer = CrossEncoderTrainer(model=model, train_dataset=anchor_positive_dataset, loss=loss)
    """

    citation = """@misc{gao2021scaling,
  title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
  author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
  year={2021},
  eprint={2101.06983},
  archivePrefix={arXiv},
  primaryClass={cs.LG}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = None,
        mini_batch_size: int = 32,
    ) -> None:
        super().__init__(model, num_negatives=num_negatives, scale=scale, activation_fn=activation_fn)
        if check_mini_batch_size(type(self).__name__, mini_batch_size) is None:
            raise ValueError("CachedMultipleNegativesRankingLoss needs a mini_batch_size; use the uncached loss.")
        self.mini_batch_size = mini_batch_size

    def cached_logits(self, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
        """All pairs' logits from no-grad mini-batches; when gradients are on, their backward replays the model."""
        device = self.model.device
        device_type = torch.device(device).type
        features, rng_states, sizes, chunks = [], [], [], []
        with torch.no_grad():
            for start in range(0, len(pairs), self.mini_batch_size):
                chunk = pairs[start : start + self.mini_batch_size]
                tokens = self.model.tokenize(chunk)
                rng_states.append(_RngState.capture(torch.device(device)))
                chunks.append(self.model(**tokens).reshape(-1))
                features.append(tokens)
                sizes.append(len(chunk))
        logits = torch.cat(chunks)
        if not torch.is_grad_enabled():
            return logits
        replay = _Replay(
            model=self.model,
            features=features,
            rng_states=rng_states,
            sizes=sizes,
            device_type=device_type,
            autocast_enabled=torch.is_autocast_enabled(device_type),
            autocast_dtype=torch.get_autocast_dtype(device_type),
        )
        return _GradCachedLogits.apply(logits.detach().requires_grad_(), replay)

    def forward(self, inputs: Sequence[Sequence[str]], labels: Any = None) -> torch.Tensor:
        plan = self.plan(inputs, labels)
        return self.loss_from_logits(self.cached_logits(plan.pairs), plan)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
