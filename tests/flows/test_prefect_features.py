"""Prefect behaviour on the real (test-harness) API: the Secret block as a token source."""

from __future__ import annotations

from prefect.blocks.system import Secret

from tasks.config import PushConfig
from tasks.push import load_prefect_secret, resolve_token


def test_token_from_a_prefect_secret_block() -> None:
    Secret(value="hf_SecretBlockValue0123456789abcdef").save("rerank-test-hf-token", overwrite=True)
    cfg = PushConfig(secret_block="rerank-test-hf-token", token_env="RERANK_UNSET_TOKEN_VARIABLE")
    token, source = resolve_token(cfg, environ={})
    assert token == "hf_SecretBlockValue0123456789abcdef"
    assert source == "Prefect Secret block 'rerank-test-hf-token'" and token not in source
    assert load_prefect_secret("no-such-block") is None
