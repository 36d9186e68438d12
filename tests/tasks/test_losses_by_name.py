from __future__ import annotations

import pytest

from rerank_lib import CrossEncoder
from rerank_lib.errors import ConfigError
from rerank_lib.losses import BinaryCrossEntropyLoss, LambdaLoss, NDCGLoss2Scheme
from tasks.losses import available_losses, build_loss, check_loss


def test_all_twelve_losses_are_available_by_name() -> None:
    assert len(available_losses()) == 12
    assert "ADRMSELoss" in available_losses()


def test_unknown_loss_and_option_are_named() -> None:
    with pytest.raises(ConfigError, match=r"train.datasets.x.loss: unknown loss 'BCELoss'"):
        check_loss("train.datasets.x", "BCELoss", {})
    with pytest.raises(ConfigError, match=r"train.datasets.x.loss_options: BinaryCrossEntropyLoss has no option"):
        check_loss("train.datasets.x", "BinaryCrossEntropyLoss", {"temperature": 2})


def test_options_are_passed_and_scheme_names_resolved(tiny_model: CrossEncoder) -> None:
    loss = build_loss("k", "BinaryCrossEntropyLoss", {"pos_weight": 3.0}, tiny_model)
    assert isinstance(loss, BinaryCrossEntropyLoss) and loss.get_config_dict()["pos_weight"] == 3.0
    lambda_loss = build_loss("k", "LambdaLoss", {"weighting_scheme": "NDCGLoss2Scheme"}, tiny_model)
    assert isinstance(lambda_loss, LambdaLoss) and isinstance(lambda_loss.weighting_scheme, NDCGLoss2Scheme)
    with pytest.raises(ConfigError, match="unknown class 'Nope'"):
        build_loss("k", "LambdaLoss", {"weighting_scheme": "Nope"}, tiny_model)


def test_plistmle_rank_convention_by_name_from_params(tiny_model: CrossEncoder) -> None:
    one_based = {"lambda_weight": {"class": "PListMLELambdaWeight", "convention": "one_based"}}
    loss = build_loss("k", "PListMLELoss", one_based, tiny_model)
    assert loss.lambda_weight.convention == "one_based"
    assert build_loss("k", "PListMLELoss", {}, tiny_model).lambda_weight.convention == "zero_based"
    with pytest.raises(ConfigError, match=r"k.loss_options.lambda_weight: cannot build PListMLELambdaWeight"):
        bad = {"lambda_weight": {"class": "PListMLELambdaWeight", "convention": "x"}}
        build_loss("k", "PListMLELoss", bad, tiny_model)
