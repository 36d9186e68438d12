"""First-token split: same logits as the model in fp32, and the int8 export quantizes every split product."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from backend_testkit import DOCUMENTS, PAIRS, QUERIES
from torch import nn

from rerank_lib import CrossEncoder
from rerank_lib.backends.first_token_split import FirstTokenSplitBert, split_first_token


@pytest.mark.parametrize("with_types", [True, False])
def test_split_module_gives_the_models_logits(saved_tiny_dir: Path, with_types: bool) -> None:
    model = CrossEncoder(saved_tiny_dir, device="cpu")
    model.model.eval()
    split = split_first_token(model.model)
    assert isinstance(split, FirstTokenSplitBert)
    long_document = " ".join(DOCUMENTS * 2)
    pairs = [*PAIRS, (QUERIES[0], long_document), ("", "")]  # padded batch, a long pair and an empty pair
    features = model.tokenizer(
        [query for query, _ in pairs], [document for _, document in pairs], padding=True, return_tensors="pt"
    )
    if not with_types:
        features.pop("token_type_ids")
    with torch.no_grad():
        expected = model.model(**features).logits
        logits = split(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)


def test_architectures_it_cannot_reproduce_are_refused(saved_tiny_dir: Path) -> None:
    model = CrossEncoder(saved_tiny_dir, device="cpu").model
    model.config.position_embedding_type = "relative_key"
    assert split_first_token(model) is None
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key'"):
        FirstTokenSplitBert(model)
    assert split_first_token(nn.Linear(2, 1)) is None


def test_int8_export_quantizes_every_split_product(onnx_exported_dir: Path) -> None:
    """Layers before the last run each product twice (first token, others); the last layer needs the first token's
    query, attention output and feed-forward only. Every one of them, plus pooler and classifier, is int8."""
    import onnx

    graph = onnx.load(str(onnx_exported_dir / "onnx" / "model_qint8.onnx")).graph
    layers = CrossEncoder(onnx_exported_dir, device="cpu").model.config.num_hidden_layers
    ops = [node.op_type for node in graph.node]
    assert ops.count("MatMulInteger") == 12 * (layers - 1) + 8 + 2
    initializers = {initializer.name for initializer in graph.initializer}
    fp32_weight_products = [
        node.name for node in graph.node if node.op_type in ("MatMul", "Gemm") and node.input[1] in initializers
    ]
    assert fp32_weight_products == []
    assert "Identity" not in ops
