"""Half-precision logits are upcast to float32 before the activation, so near scores do not tie."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rerank_lib import CrossEncoder

PAIRS = [(f"question {i}", f"a passage about the {word} city" * (1 + i % 3)) for i, word in enumerate("abcdefghij")]


def test_bf16_weights_score_through_a_float32_activation(tiny_bert_dir: Path) -> None:
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, device="cpu", model_kwargs={"dtype": torch.bfloat16})
    assert next(model.model.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        logits = model(**model.tokenize(PAIRS)).view(-1)
    assert logits.dtype == torch.bfloat16
    scores = model.predict(PAIRS, batch_size=len(PAIRS))
    np.testing.assert_allclose(scores, torch.sigmoid(logits.float()).numpy(), atol=1e-7, rtol=0)
    in_bf16 = torch.sigmoid(logits).float().numpy()  # what an activation in bf16 would give: 2-3 digits
    assert len(set(in_bf16.tolist())) < len(set(scores.tolist()))


def test_causal_reranker_logits_are_float32_even_from_bf16_weights(tiny_causal_lm_dir: Path) -> None:
    model = CrossEncoder(tiny_causal_lm_dir, device="cpu", model_kwargs={"dtype": torch.bfloat16})
    with torch.no_grad():
        logits = model(**model.tokenize(PAIRS)).view(-1)
    assert logits.dtype == torch.float32
    np.testing.assert_allclose(model.predict(PAIRS), torch.sigmoid(logits).numpy(), atol=1e-7, rtol=0)
