"""The promotion gate on a real MLflow registry (sqlite in tmp_path)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tasks.config import PromoteConfig
from tasks.promote import (
    DATA_HASH_TAG,
    HISTORY_TAG,
    METRIC_TAG,
    SCORE_TAG,
    PromotionError,
    canonical_version,
    decide,
    gate,
    promote_version,
    rollback,
)

NAME = "reranker"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One registry database for the module (creating its schema is the slow part); a model name per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"


@pytest.fixture
def client(tracking_uri: str, request: pytest.FixtureRequest) -> MlflowClient:
    global NAME
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    NAME = f"reranker-{request.node.name}"
    client.create_registered_model(NAME)
    return client


def add_version(client: MlflowClient, score: float, data_hash: str = "abc", metric: str = "ndcg@10") -> str:
    version = client.create_model_version(NAME, source="file:///tmp/model").version
    for key, value in {SCORE_TAG: str(score), DATA_HASH_TAG: data_hash, METRIC_TAG: metric}.items():
        client.set_model_version_tag(NAME, version, key, value)
    return str(version)


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(NAME, "champion").version)


def test_first_version_becomes_champion_and_tags_record_why(client: MlflowClient, tmp_path: Path) -> None:
    version = add_version(client, 0.5)
    decision = gate(PromoteConfig(), client, NAME, version, tmp_path)
    assert decision.decision == "champion" and decision.reason == "first version"
    assert champion(client) == version
    tags = client.get_model_version(NAME, version).tags
    assert tags["promotion.decision"] == "champion" and tags["promotion.new_score"] == "0.5"


def test_better_version_takes_champion_worse_becomes_challenger(client: MlflowClient, tmp_path: Path) -> None:
    cfg = PromoteConfig(min_delta=0.01)
    first = add_version(client, 0.50)
    gate(cfg, client, NAME, first, tmp_path)
    small_gain = add_version(client, 0.505)
    assert gate(cfg, client, NAME, small_gain, tmp_path).decision == "challenger"
    assert champion(client) == first
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == small_gain
    better = add_version(client, 0.52)
    decision = gate(cfg, client, NAME, better, tmp_path)
    assert decision.decision == "champion" and decision.champion_score == 0.5
    assert champion(client) == better
    tags = client.get_model_version(NAME, small_gain).tags
    assert tags["promotion.champion_version"] == first and "min_delta" in tags["promotion.reason"]


def test_different_eval_data_is_never_compared(client: MlflowClient, tmp_path: Path) -> None:
    gate(PromoteConfig(), client, NAME, add_version(client, 0.5, data_hash="abc"), tmp_path)
    other = add_version(client, 0.9, data_hash="xyz")
    decision = gate(PromoteConfig(), client, NAME, other, tmp_path)
    assert decision.decision == "challenger" and "different data" in decision.reason
    assert champion(client) != other


def test_manual_promote_and_rollback(client: MlflowClient, tmp_path: Path) -> None:
    cfg = PromoteConfig()
    v1 = add_version(client, 0.6)
    gate(cfg, client, NAME, v1, tmp_path)
    v2 = add_version(client, 0.4)
    gate(cfg, client, NAME, v2, tmp_path)
    assert champion(client) == v1
    promote_version(cfg, client, NAME, v2, tmp_path)
    assert champion(client) == v2
    assert rollback(cfg, client, NAME, tmp_path) == v1
    assert champion(client) == v1
    with pytest.raises(PromotionError, match="no previous champion"):
        rollback(cfg, client, NAME, tmp_path)
    with pytest.raises(PromotionError, match="no version 99"):
        promote_version(cfg, client, NAME, "99", tmp_path)


def _promote_in_process(tracking_uri: str, name: str, version: str, lock_dir: str) -> None:
    mlflow.set_tracking_uri(tracking_uri)
    gate(PromoteConfig(), MlflowClient(), name, version, Path(lock_dir))


def test_concurrent_promotions_leave_the_best_as_champion(client: MlflowClient, tmp_path: Path) -> None:
    gate(PromoteConfig(), client, NAME, add_version(client, 0.5), tmp_path)
    low, high = add_version(client, 0.6), add_version(client, 0.7)
    uri = mlflow.get_tracking_uri()
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        try:
            _promote_in_process(uri, NAME, version, str(tmp_path))
        except BaseException as error:  # surfaced below
            errors.append(error)

    workers = [threading.Thread(target=promote, args=(v,)) for v in (high, low)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors
    assert champion(client) == high


def test_decide_is_pure() -> None:
    class Version:
        def __init__(self, version: str, score: float) -> None:
            self.version, self.tags = version, {SCORE_TAG: str(score), DATA_HASH_TAG: "h", METRIC_TAG: "m"}

    assert decide(PromoteConfig(min_delta=0.1), Version("2", 0.65), Version("1", 0.6)).decision == "challenger"
    assert decide(PromoteConfig(min_delta=0.1), Version("2", 0.71), Version("1", 0.6)).decision == "champion"


@pytest.mark.parametrize("spelling", [" 1", "1 ", "01", 1])
def test_version_spellings_are_one_version(spelling: str | int) -> None:
    assert canonical_version(spelling) == "1"


@pytest.mark.parametrize("bad", ["", "v1", "1.0", "0", "-1", "²", "latest"])
def test_what_is_no_version_is_refused(bad: str) -> None:
    with pytest.raises(PromotionError, match="whole number"):
        canonical_version(bad)


def test_odd_spellings_do_not_break_history_or_rollback(client: MlflowClient, tmp_path: Path) -> None:
    first, second = add_version(client, 0.5), add_version(client, 0.6)
    cfg = PromoteConfig()
    assert promote_version(cfg, client, NAME, f" {first}", tmp_path) == first
    assert promote_version(cfg, client, NAME, f"0{first}", tmp_path) == first  # already champion: no new entry
    assert promote_version(cfg, client, NAME, f"{second} ", tmp_path) == second
    assert client.get_registered_model(NAME).tags[HISTORY_TAG] == f'["{first}", "{second}"]'
    assert rollback(cfg, client, NAME, tmp_path) == first
    assert champion(client) == first


def add_version_with_run(client: MlflowClient, score: float, metrics: dict[str, float]) -> str:
    """A version whose run logged ``metrics`` (MLflow names), as the register stage leaves it."""
    experiment = client.get_experiment_by_name("guards") or client.get_experiment(client.create_experiment("guards"))
    run = client.create_run(experiment.experiment_id)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    version = client.create_model_version(NAME, source="file:///tmp/model", run_id=run.info.run_id).version
    for key, value in {SCORE_TAG: str(score), DATA_HASH_TAG: "abc", METRIC_TAG: "wikiqa_test_ndcg@10"}.items():
        client.set_model_version_tag(NAME, version, key, value)
    return str(version)


def test_a_guard_keeps_a_winner_that_regresses_elsewhere_a_challenger(client: MlflowClient, tmp_path: Path) -> None:
    cfg = PromoteConfig(metric="wikiqa_test_ndcg@10", guards={"scifact_dev_ndcg@10": 0.01})
    first = add_version_with_run(client, 0.60, {"scifact_dev_ndcg_at_10": 0.80})
    gate(cfg, client, NAME, first, tmp_path)
    regresses = add_version_with_run(client, 0.65, {"scifact_dev_ndcg_at_10": 0.78})
    decision = gate(cfg, client, NAME, regresses, tmp_path)
    assert decision.decision == "challenger" and champion(client) == first
    assert "guard scifact_dev_ndcg@10: 0.7800 is 0.0200 below the champion's 0.8000 (max_drop 0.01)" in decision.reason
    assert decision.compared["scifact_dev_ndcg@10"] == {"new": 0.78, "champion": 0.80, "max_drop": 0.01}
    assert decision.compared["wikiqa_test_ndcg@10"]["new"] == 0.65
    tags = client.get_model_version(NAME, regresses).tags
    assert json.loads(tags["promotion.compared"])["scifact_dev_ndcg@10"]["champion"] == 0.80
    holds = add_version_with_run(client, 0.66, {"scifact_dev_ndcg_at_10": 0.795})
    assert gate(cfg, client, NAME, holds, tmp_path).decision == "champion" and champion(client) == holds


def test_a_guard_without_a_recorded_value_does_not_promote(client: MlflowClient, tmp_path: Path) -> None:
    cfg = PromoteConfig(guards={"scifact_dev_ndcg@10": 0.01})
    first = add_version_with_run(client, 0.60, {})
    gate(cfg, client, NAME, first, tmp_path)
    second = add_version_with_run(client, 0.70, {"scifact_dev_ndcg_at_10": 0.9})
    decision = gate(cfg, client, NAME, second, tmp_path)
    assert decision.decision == "challenger" and "no value recorded for the champion" in decision.reason
