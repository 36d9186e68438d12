"""Prefect behaviour on the real (test-harness) API: the prepare cache and the Secret block as a token source."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.blocks.system import Secret

from flows.retrain import prepare_task, prepared_outputs_exist
from tasks.config import PushConfig, load_params
from tasks.layout import Layout
from tasks.push import load_prefect_secret, resolve_token
from tests.e2e_support import link_raw_data, quick_params


def test_a_repeated_prepare_is_served_from_the_cache(tmp_path: Path) -> None:
    quick_params(tmp_path)
    link_raw_data(tmp_path)
    layout = Layout(tmp_path)
    cfg = load_params(tmp_path / "params.yaml")

    @flow
    def prepare_twice() -> tuple[str, str, str]:
        first = prepare_task(cfg, layout, return_state=True)
        second = prepare_task(cfg, layout, return_state=True)
        (layout.prepared / "wikiqa-test" / "manifest.json").unlink()  # a lost output must not be served cached
        refresh = not prepared_outputs_exist(cfg, layout)
        third = prepare_task.with_options(refresh_cache=refresh)(cfg, layout, return_state=True)
        return first.name, second.name, third.name

    assert prepare_twice() == ("Completed", "Cached", "Completed")
    assert (layout.prepared / "wikiqa-test" / "manifest.json").is_file()


def test_token_from_a_prefect_secret_block() -> None:
    Secret(value="hf_SecretBlockValue0123456789abcdef").save("rerank-test-hf-token", overwrite=True)
    cfg = PushConfig(secret_block="rerank-test-hf-token", token_env="RERANK_UNSET_TOKEN_VARIABLE")
    token, source = resolve_token(cfg, environ={})
    assert token == "hf_SecretBlockValue0123456789abcdef"
    assert source == "Prefect Secret block 'rerank-test-hf-token'" and token not in source
    assert load_prefect_secret("no-such-block") is None
