"""A trial's checkpoint folder (its own, and its retries'), and the guards it leaves for the sampler."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from tasks.config import load_params
from tasks.tune_trial import UNJUDGED, checkpoint_root, judged_guards, record_unjudged

ROOT = Path(__file__).resolve().parents[2]
ROUTES = ["full", "decay", "adapter"]


def draw(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("train.learning_rate", 1e-5, 1e-4)
    return trial


def test_a_retry_uses_its_first_trys_checkpoints_and_a_twin_trial_its_own(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    first = draw(study)
    first_root = checkpoint_root(first, tmp_path)
    study.tell(first, state=optuna.trial.TrialState.FAIL)  # its process died
    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    retry = draw(study)  # the enqueued retry: the same values
    study.enqueue_trial(first.params)
    twin = draw(study)  # another trial drawing the same values, e.g. for a second worker

    assert retry.params == twin.params == first.params
    assert checkpoint_root(retry, tmp_path) == first_root == tmp_path / "checkpoints" / "trial-0"
    assert checkpoint_root(twin, tmp_path) == tmp_path / "checkpoints" / f"trial-{twin.number}" != first_root
    # A retry of the retry still resumes the first try's checkpoints.
    study.tell(retry, state=optuna.trial.TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback()(study, study.trials[retry.number])
    again = draw(study)
    assert again.params == first.params and checkpoint_root(again, tmp_path) == first_root


def finish(study: optuna.Study, route: str, miss: float | None, value: float) -> None:
    """A trial of ``route``: complete with its guard missed by ``miss``, or pruned (``miss`` None) at ``value``."""
    study.enqueue_trial({"route": route})
    trial = study.ask()
    trial.suggest_categorical("route", ROUTES)
    if miss is None:
        trial.report(value, 200)
        record_unjudged(trial, 1)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_constraint("guard_0", miss)
        study.tell(trial, value)


def test_pruned_trials_rank_after_complete_ones_that_miss_a_guard_so_tpe_samples_near_the_best_complete() -> None:
    study = optuna.create_study(direction="maximize")
    finish(study, "full", 0.01, 0.82)  # the best, missing its guard by a hair (as every complete trial here)
    for value in (0.70, 0.71):
        finish(study, "full", 0.10, value)
    for value in (0.72, 0.73, 0.74):
        finish(study, "decay", 0.10, value)
    for value in (0.60, 0.55, 0.50):
        finish(study, "adapter", None, value)  # stopped by the pruner: its guard never judged

    pruned = [trial for trial in study.trials if trial.state == TrialState.PRUNED]
    assert all(trial.constraints == {"guard_0": UNJUDGED} for trial in pruned)
    drawn = []
    for seed in range(20):
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)  # 9 trials: the best 1 leads
        trial = study.ask()
        drawn.append(trial.suggest_categorical("route", ROUTES))
        study.tell(trial, state=TrialState.FAIL)  # TPE ignores failed trials: each draw sees the same history
    # Without the pruned trials' constraints TPE counts them feasible, ranks them first and draws "adapter".
    assert drawn.count("full") > 10 and drawn.count("adapter") < 5


def test_the_guards_judged_are_the_objectives_and_with_a_package_scorer_the_packages_too() -> None:
    cfg = load_params(ROOT / "params.yaml")
    package_guard = {"metric": "scifact_heldout_ndcg@10", "above": "bm25"}
    cfg = cfg.model_copy(update={"package": cfg.package.model_copy(update={"guards": [package_guard]})})
    assert judged_guards(cfg) == list(cfg.dev.objective.guards) and len(judged_guards(cfg)) == 2
    scored = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"scorer": "package"})})
    assert judged_guards(scored) == [*cfg.dev.objective.guards, *cfg.package.guards] and len(judged_guards(scored)) == 3
