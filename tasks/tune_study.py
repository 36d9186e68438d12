"""The optuna study behind `rerank tune`: its storage, sampler and pruner, resuming it, and which trial is best.

**Storage.** Each study lives in its own sqlite file, ``artifacts/tune/<study>.db`` (``tune.storage`` takes any RDB
URL optuna accepts, e.g. a PostgreSQL database that the machines of a work pool share). Not in the MLflow database:
optuna and MLflow each migrate their own schema, and two migration histories in one file would tie every upgrade of
one to the other; a file of its own can be deleted to restart a study without touching the model registry, and DVC
keeps it as the tune stage's persistent output. MLflow still gets every trial, as a child run
(:mod:`tasks.tune_tracking`).

**Resume.** Every running trial records a heartbeat; a trial silent for twice ``tune.heartbeat_seconds`` (its process
was killed, its machine lost) is failed and enqueued again with the same values, so the retry trains the same
config and resumes from that config's last checkpoint. The study also records what it was started with (space,
objective, the params under it, the dev data): resuming with any of those changed would mix trials judged
differently, so it is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from rerank_lib.errors import ConfigError
from tasks.tune_config import TuneConfig
from tasks.tune_space import grid, params_values

logger = logging.getLogger(__name__)

FINGERPRINT_ATTR = "rerank.fingerprint"
PARAMS_TRIAL_ATTR = "params_as_they_are"  # user attr of the queued trial that trains the params unchanged
RETRIES = 3  # a trial whose process keeps dying is retried this many times, then counts as failed


def storage_url(tune: TuneConfig, tune_dir: Path) -> str:
    if tune.storage:
        return tune.storage
    return f"sqlite:///{(Path(tune_dir) / f'{tune.study}.db').resolve()}"


def sampler_for_seed(tune: TuneConfig, seed: int) -> optuna.samplers.BaseSampler:
    if tune.sampler.kind == "grid":
        return optuna.samplers.GridSampler(grid(tune.space), seed=seed)
    if tune.sampler.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Guards reach TPE as the trials' constraints (tasks.tune_trial.record): it learns where they hold.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tune.sampler.startup_trials)


class PerTrialSeedSampler(optuna.samplers.BaseSampler):
    """The configured sampler, built afresh for each trial with ``seed + trial number``.

    Why: an optuna sampler draws from one random stream per sampler object, and every process that opens the study
    (each trial worker of the tune flow, a resumed study) starts that stream over from the seed, so each would draw
    the same values as the first trial. Seeding by trial number keeps a study reproducible and its trials distinct
    however many processes run it. TPE, random and grid samplers keep no other state: they read the history from
    the study.
    """

    def __init__(self, tune: TuneConfig) -> None:
        self._tune = tune
        self._current = sampler_for_seed(tune, tune.sampler.seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._current = sampler_for_seed(self._tune, self._tune.sampler.seed + trial.number)
        self._current.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._current.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._current.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, distribution: Any) -> Any:
        return self._current.sample_independent(study, trial, param_name, distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._current.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._current.reseed_rng()


def make_sampler(tune: TuneConfig) -> optuna.samplers.BaseSampler:
    return PerTrialSeedSampler(tune)


def make_pruner(tune: TuneConfig) -> optuna.pruners.BasePruner:
    if tune.pruner.kind == "none" or tune.eval_steps is None:
        return optuna.pruners.NopPruner()
    if tune.pruner.kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    kept = 50.0 if tune.pruner.kind == "median" else tune.pruner.keep_percent  # optuna's percentile: the top kept
    return optuna.pruners.PercentilePruner(
        kept, n_startup_trials=tune.pruner.startup_trials, n_warmup_steps=tune.pruner.warmup_steps
    )


def open_study(tune: TuneConfig, tune_dir: Path, fingerprint: dict[str, Any]) -> optuna.Study:
    """Create the study, or load it to resume; refuse to resume one started with other settings or data."""
    Path(tune_dir).mkdir(parents=True, exist_ok=True)
    url = storage_url(tune, tune_dir)
    with warnings.catch_warnings():  # heartbeats and their retry callback are marked experimental in optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(
            url,
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
            heartbeat_interval=tune.heartbeat_seconds,
            grace_period=2 * tune.heartbeat_seconds,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=RETRIES),
        )
    study = optuna.create_study(
        study_name=tune.study,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(tune),
        pruner=make_pruner(tune),
    )
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()
    recorded = study.user_attrs.get(FINGERPRINT_ATTR)
    if recorded is None:
        study.set_user_attr(FINGERPRINT_ATTR, digest)
    elif recorded != digest:
        raise ConfigError(
            f"tune.study {tune.study!r} ({url}) was started with another space, objective, recipe or dev data; "
            "resuming would mix trials judged differently. Name a new tune.study, or delete the study to restart it."
        )
    return study


def enqueue_params(study: optuna.Study, tune: TuneConfig, params: dict[str, Any]) -> int | None:
    """Queue a first trial that trains ``params`` as they are, once per study; that trial's number (its latest try).

    Why: a study that never tries today's recipe cannot say whether its best beats it, and TPE learns from a good
    point early. Skipped for the grid sampler (the grid decides every trial) and where the space cannot express the
    params (a warning names the keys).
    """
    if not tune.enqueue_params or tune.sampler.kind == "grid":
        return None
    queued = params_trial(study)
    if queued is not None:
        return queued.number
    values, misses = params_values(tune.space, params)
    if misses:
        logger.warning("tune.enqueue_params: the space cannot train the params as they are (%s)", "; ".join(misses))
        return None
    study.enqueue_trial(values, user_attrs={PARAMS_TRIAL_ATTR: True})
    number = study.get_trials(deepcopy=False)[-1].number
    logger.info("Trial %d trains the params as they are: %s", number, values)
    return number


def params_trial(study: optuna.Study) -> FrozenTrial | None:
    """The last try of the trial that trained the params as they are (a retry inherits the mark)."""
    marked = [trial for trial in study.get_trials(deepcopy=False) if trial.user_attrs.get(PARAMS_TRIAL_ATTR)]
    return marked[-1] if marked else None


def retried(study: optuna.Study) -> set[int]:
    """Numbers of trials that died and were enqueued again (their retry counts instead)."""
    trials = study.get_trials(deepcopy=False)
    return {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}


def finished(study: optuna.Study) -> int:
    """Trials that count towards ``tune.trials``: complete, pruned, or failed (and not being retried)."""
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    again = retried(study)
    return sum(1 for t in study.get_trials(deepcopy=False, states=done) if t.number not in again)


def running(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the best objective among those whose guards held (else among all complete ones)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    feasible = [trial for trial in complete if trial.user_attrs.get("feasible")]
    pool = feasible or complete
    return max(pool, key=lambda trial: (trial.value, -trial.number)) if pool else None
