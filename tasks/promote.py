"""The promotion gate over MLflow registry aliases, plus manual promote and rollback.

A new version becomes `champion` only if it was evaluated on the same data as the current champion and beats
it by at least ``min_delta``; otherwise it becomes `challenger`. The decision, both scores and the reason are
recorded as version tags. Aliases move under a lock, and the champion is read again just before moving, so two
flows finishing together cannot leave the lower score as champion.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from rerank_lib.errors import RerankError
from tasks.config import PromoteConfig
from tasks.tracking import mlflow_metric_name

logger = logging.getLogger(__name__)

SCORE_TAG = "eval.primary_score"
METRIC_TAG = "eval.primary_metric"
DATA_HASH_TAG = "eval.data_hash"
HISTORY_TAG = "champion_history"


class PromotionError(RerankError):
    """A manual promotion or rollback cannot be done (unknown version, no history)."""


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    decision: str  # "champion" or "challenger"
    reason: str
    new_score: float
    champion_version: str | None
    champion_score: float | None
    # Every number the gate compared: {metric: {"new", "champion", and "min_delta" or "max_drop"}}.
    compared: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def as_tags(self) -> dict[str, str]:
        tags = {f"promotion.{key}": "" if value is None else str(value) for key, value in asdict(self).items()}
        tags["promotion.compared"] = json.dumps(self.compared, sort_keys=True)
        return tags


def canonical_version(version: str | int) -> str:
    """A registry version as MLflow spells it: `` 3``, ``03`` and ``3`` are all ``"3"``; anything else fails."""
    text = str(version).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise PromotionError(f"--version {version!r}: a registered model version is a whole number from 1 up.")
    return str(int(text))


def champion_history(client: MlflowClient, name: str) -> list[str]:
    """The champion versions in the order they were promoted, canonical and without repeats in a row."""
    model = client.get_registered_model(name)
    history: list[str] = []
    for entry in json.loads(model.tags.get(HISTORY_TAG, "[]")):
        try:
            version = canonical_version(entry)
        except PromotionError:
            continue  # a hand-edited tag: skip what is no version
        if not history or history[-1] != version:
            history.append(version)
    return history


def _champion(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _lock_path(lock_dir: Path, name: str) -> Path:
    lock_dir.mkdir(parents=True, exist_ok=True)
    return lock_dir / f".promote-{name}.lock"


def _push_history(client: MlflowClient, name: str, version: str) -> None:
    history = champion_history(client, name)
    if not history or history[-1] != version:
        history.append(version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))


def decide(
    cfg: PromoteConfig,
    new: ModelVersion,
    champion: ModelVersion | None,
    new_metrics: dict[str, float] | None = None,
    champion_metrics: dict[str, float] | None = None,
) -> PromotionDecision:
    """The gate itself, a pure function of the two versions' tags and (for guards) their runs' metrics."""
    new_score = float(new.tags[SCORE_TAG])
    if champion is None:
        return PromotionDecision(new.version, "champion", "first version", new_score, None, None)
    champion_score = float(champion.tags.get(SCORE_TAG, "nan"))
    verdict = partial(PromotionDecision, new.version, new_score=new_score, champion_version=champion.version)
    if champion.version == new.version:
        return verdict("champion", "already champion", champion_score=new_score)
    if champion.tags.get(DATA_HASH_TAG) != new.tags.get(DATA_HASH_TAG) or champion.tags.get(METRIC_TAG) != new.tags.get(
        METRIC_TAG
    ):
        reason = "evaluated on different data or metric than the champion; not comparable"
        return verdict("challenger", reason, champion_score=champion_score)
    metric = new.tags.get(METRIC_TAG, "score")
    compared = {metric: {"new": new_score, "champion": champion_score, "min_delta": cfg.min_delta}}
    if new_score < champion_score + cfg.min_delta:
        reason = f"{metric} {new_score:.4f} < champion {champion_score:.4f} + min_delta {cfg.min_delta}"
        return verdict("challenger", reason, champion_score=champion_score, compared=compared)
    failed = check_guards(cfg.guards, new_metrics or {}, champion_metrics or {}, compared)
    if failed:
        return verdict("challenger", "; ".join(failed), champion_score=champion_score, compared=compared)
    reason = f"{metric} {new_score:.4f} >= champion {champion_score:.4f} + min_delta {cfg.min_delta}"
    if cfg.guards:
        reason += f"; guards held ({', '.join(sorted(cfg.guards))})"
    return verdict("champion", reason, champion_score=champion_score, compared=compared)


def check_guards(
    guards: dict[str, float],
    new_metrics: dict[str, float],
    champion_metrics: dict[str, float],
    compared: dict[str, dict[str, float | None]],
) -> list[str]:
    """Why the guards stop a promotion (empty when they all hold); every compared number goes into ``compared``."""
    failed = []
    for metric, max_drop in sorted(guards.items()):
        key = mlflow_metric_name(metric)
        new_value, champion_value = new_metrics.get(key), champion_metrics.get(key)
        compared[metric] = {"new": new_value, "champion": champion_value, "max_drop": max_drop}
        if new_value is None or champion_value is None:
            failed.append(
                f"guard {metric}: no value recorded for the {'new version' if new_value is None else 'champion'}"
            )
        elif champion_value - new_value > max_drop:
            failed.append(
                f"guard {metric}: {new_value:.4f} is {champion_value - new_value:.4f} below the champion's "
                f"{champion_value:.4f} (max_drop {max_drop})"
            )
    return failed


def run_metrics(client: MlflowClient, version: ModelVersion | None) -> dict[str, float]:
    """The metrics logged to a version's run (MLflow names), empty when it has no run."""
    if version is None or not version.run_id:
        return {}
    try:
        return dict(client.get_run(version.run_id).data.metrics)
    except MlflowException:
        return {}


def gate(cfg: PromoteConfig, client: MlflowClient, name: str, version: str, lock_dir: Path) -> PromotionDecision:
    """Apply the gate to ``version`` and move the aliases (compare-and-set under a lock)."""
    with FileLock(str(_lock_path(lock_dir, name)), timeout=600):
        for _ in range(10):
            new = client.get_model_version(name, version)
            champion = _champion(client, name, cfg.champion_alias)
            decision = decide(cfg, new, champion, run_metrics(client, new), run_metrics(client, champion))
            # Compare-and-set: the champion must still be the one we compared with.
            current = _champion(client, name, cfg.champion_alias)
            if (current.version if current else None) != (champion.version if champion else None):
                time.sleep(0.1)
                continue
            if decision.decision == "champion":
                client.set_registered_model_alias(name, cfg.champion_alias, version)
                _push_history(client, name, version)
            else:
                client.set_registered_model_alias(name, cfg.challenger_alias, version)
            for key, value in decision.as_tags().items():
                client.set_model_version_tag(name, version, key, value)
            logger.info("Version %s of %s: %s (%s)", version, name, decision.decision, decision.reason)
            return decision
    raise PromotionError(f"The champion alias of {name} kept changing; promotion of version {version} not applied.")


def promote_version(cfg: PromoteConfig, client: MlflowClient, name: str, version: str, lock_dir: Path) -> str:
    """Make ``version`` champion by hand (recorded as a manual decision)."""
    version = canonical_version(version)
    with FileLock(str(_lock_path(lock_dir, name)), timeout=600):
        try:
            client.get_model_version(name, version)
        except MlflowException as error:
            raise PromotionError(f"Model {name} has no version {version}.") from error
        client.set_registered_model_alias(name, cfg.champion_alias, version)
        _push_history(client, name, version)
        client.set_model_version_tag(name, version, "promotion.decision", "champion")
        client.set_model_version_tag(name, version, "promotion.reason", "manual promotion")
    return version


def rollback(cfg: PromoteConfig, client: MlflowClient, name: str, lock_dir: Path) -> str:
    """Move `champion` back to the previous champion; returns that version."""
    with FileLock(str(_lock_path(lock_dir, name)), timeout=600):
        history = champion_history(client, name)
        current = _champion(client, name, cfg.champion_alias)
        if current is not None and history and history[-1] != str(current.version):
            history.append(str(current.version))  # the alias was moved outside this tool: roll back from where it is
        if len(history) < 2:
            raise PromotionError(f"Model {name} has no previous champion to roll back to (history: {history}).")
        history.pop()
        previous = history[-1]
        client.set_registered_model_alias(name, cfg.champion_alias, previous)
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        client.set_model_version_tag(name, previous, "promotion.reason", "rollback")
    return previous
