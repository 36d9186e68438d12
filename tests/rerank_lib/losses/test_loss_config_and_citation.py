"""What the model card reads from each loss: a JSON-serialisable config and a BibTeX citation."""

from __future__ import annotations

import json
import re

import pytest
from loss_testkit import TableScorer, one_thread  # noqa: F401 (one_thread is autouse)
from torch import nn

import rerank_lib.losses as losses
from rerank_lib.activation import activation_from_path

LOSSES = [
    "ADRMSELoss",
    "BinaryCrossEntropyLoss",
    "CrossEntropyLoss",
    "MSELoss",
    "MarginMSELoss",
    "MultipleNegativesRankingLoss",
    "CachedMultipleNegativesRankingLoss",
    "ListNetLoss",
    "PListMLELoss",
    "LambdaLoss",
    "RankNetLoss",
    "ListMLELoss",
]
SCHEMES = [
    "NoWeightingScheme",
    "NDCGLoss1Scheme",
    "NDCGLoss2Scheme",
    "LambdaRankScheme",
    "NDCGLoss2PPScheme",
    "PListMLELambdaWeight",
]
NO_PAPER = {"BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss"}

EXPECTED_CONFIG = {
    "ADRMSELoss": {
        "temperature": 1.0,
        "discount": "log2",
        "activation_fn": "torch.nn.modules.linear.Identity",
        "mini_batch_size": None,
    },
    "BinaryCrossEntropyLoss": {"activation_fn": "torch.nn.modules.linear.Identity", "pos_weight": None},
    "CrossEntropyLoss": {"activation_fn": "torch.nn.modules.linear.Identity"},
    "MSELoss": {"activation_fn": "torch.nn.modules.linear.Identity"},
    "MarginMSELoss": {"activation_fn": "torch.nn.modules.linear.Identity"},
    "MultipleNegativesRankingLoss": {
        "num_negatives": 4,
        "scale": 10.0,
        "activation_fn": "torch.nn.modules.activation.Sigmoid",
    },
    "CachedMultipleNegativesRankingLoss": {
        "num_negatives": 4,
        "scale": 10.0,
        "activation_fn": "torch.nn.modules.activation.Sigmoid",
        "mini_batch_size": 32,
    },
    "ListNetLoss": {"activation_fn": "torch.nn.modules.linear.Identity", "mini_batch_size": None},
    "PListMLELoss": {
        "lambda_weight": {
            "class": "PListMLELambdaWeight",
            "params": {"rank_discount_fn": None, "convention": "zero_based"},
        },
        "activation_fn": "torch.nn.modules.linear.Identity",
        "respect_input_order": True,
        "mini_batch_size": None,
    },
    "LambdaLoss": {
        "weighting_scheme": {"class": "NDCGLoss2PPScheme", "params": {"mu": 10.0}},
        "k": None,
        "sigma": 1.0,
        "eps": 1e-10,
        "reduction_log": "binary",
        "activation_fn": "torch.nn.modules.linear.Identity",
        "mini_batch_size": None,
    },
    "RankNetLoss": {
        "k": None,
        "sigma": 1.0,
        "eps": 1e-10,
        "reduction_log": "binary",
        "activation_fn": "torch.nn.modules.linear.Identity",
        "mini_batch_size": None,
    },
    "ListMLELoss": {
        "activation_fn": "torch.nn.modules.linear.Identity",
        "respect_input_order": True,
        "mini_batch_size": None,
    },
}


class ThreeOutputs(TableScorer):
    num_labels = 3


def build(name: str) -> nn.Module:
    model = ThreeOutputs({("a", "b"): 0.0}) if name == "CrossEntropyLoss" else TableScorer({("a", "b"): 0.0})
    return getattr(losses, name)(model)


def test_everything_is_exported() -> None:
    for name in LOSSES + SCHEMES:
        assert name in losses.__all__
        assert getattr(losses, name) is not None


@pytest.mark.parametrize("name", LOSSES)
def test_default_config_is_json_and_matches_the_documented_defaults(name: str) -> None:
    config = build(name).get_config_dict()
    assert json.loads(json.dumps(config)) == EXPECTED_CONFIG[name]
    activation = config["activation_fn"]
    assert type(activation_from_path(activation, 1)).__name__ == activation.rsplit(".", 1)[1]


@pytest.mark.parametrize("name", LOSSES)
def test_citation_is_bibtex(name: str) -> None:
    citation = getattr(losses, name).citation
    assert isinstance(citation, str)
    if name in NO_PAPER:
        return
    assert re.match(r"^@(inproceedings|misc|article)\{\w+,\n", citation)
    assert citation.count("{") == citation.count("}")
    for field in ("title", "author", "year"):
        assert re.search(rf"^\s+{field}=\{{[^{{}}]*(\{{[^{{}}]*\}}[^{{}}]*)*\}},?$", citation, flags=re.MULTILINE), (
            field
        )


def test_custom_options_reach_the_config() -> None:
    model = TableScorer({("a", "b"): 0.0})
    config = losses.LambdaLoss(
        model, weighting_scheme=losses.NDCGLoss2Scheme(), k=5, activation_fn=nn.Sigmoid(), mini_batch_size=16
    ).get_config_dict()
    assert config["weighting_scheme"] == {"class": "NDCGLoss2Scheme", "params": {}}
    assert config["k"] == 5 and config["mini_batch_size"] == 16
    assert config["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    assert losses.LambdaLoss(model, weighting_scheme=None).get_config_dict()["weighting_scheme"]["class"] == (
        "NoWeightingScheme"
    )
    plain = losses.PListMLELoss(model, lambda_weight=None).get_config_dict()
    assert plain["lambda_weight"] is None
    custom = losses.PListMLELoss(model, lambda_weight=losses.PListMLELambdaWeight(rank_discount_fn=abs))
    assert custom.get_config_dict()["lambda_weight"]["params"]["rank_discount_fn"] == "builtins.abs"
    assert json.dumps(losses.BinaryCrossEntropyLoss(model, pos_weight=2).get_config_dict())


def test_default_schemes_are_not_shared_between_losses() -> None:
    model = TableScorer({("a", "b"): 0.0})
    first, second = losses.LambdaLoss(model), losses.LambdaLoss(model)
    first.weighting_scheme.mu = 3.0
    assert second.weighting_scheme.mu == 10.0
    assert losses.PListMLELoss(model).lambda_weight is not losses.PListMLELoss(model).lambda_weight
