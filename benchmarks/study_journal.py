"""A tune study carried between machines as optuna's journal file, for a study longer than one machine's stay.

The study benchmark needs more hours than one machine is kept for, and its work folder does not outlive the
machine. Its study is therefore saved into ``benchmarks/results/`` as optuna's own journal format (JSON lines, written
by ``optuna.storages.JournalStorage``), which a later run restores into the project's sqlite storage and resumes.
Only what a resume needs is saved: finished trials (complete, pruned, failed) and waiting ones (retries). A trial
still marked running when the study is saved (its process is gone) is saved as failed at that moment, with a retry
of the same values queued, as the study's heartbeat would have done; its time counts as spent.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from tasks.tune_result import seconds_taken

KEPT = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING)


def journal_storage(path: Path) -> JournalStorage:
    with warnings.catch_warnings():  # the journal file backend is marked experimental in some optuna releases
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return JournalStorage(JournalFileBackend(str(path)))


def close_running(study: optuna.Study) -> int:
    """Fail trials left running by a process that is gone (call it only then), queue their retries; how many."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001 - optuna has no public way
        failed = study._storage.get_trial(trial._trial_id)  # noqa: SLF001
        with warnings.catch_warnings():  # the retry callback is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback()(study, failed)
    return len(stale)


def save(storage_url: str, study_name: str, journal: Path) -> int:
    """Write the study's resumable trials to ``journal`` (replaced whole, atomically); returns how many."""
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    close_running(study)
    staging = journal.with_name(journal.name + ".partial")
    staging.unlink(missing_ok=True)
    target = optuna.create_study(study_name=study_name, storage=journal_storage(staging), directions=study.directions)
    for key, value in study._storage.get_study_system_attrs(study._study_id).items():  # noqa: SLF001
        target._storage.set_study_system_attr(target._study_id, key, value)  # noqa: SLF001
    for key, value in study.user_attrs.items():
        target.set_user_attr(key, value)
    kept = [trial for trial in study.get_trials(deepcopy=False) if trial.state in KEPT]
    for trial in kept:
        target._storage.create_new_trial(target._study_id, template_trial=trial)  # noqa: SLF001
    if journal.is_file() and same_apart_from_writers(staging, journal):
        staging.unlink()  # an unchanged study leaves its file (and the repository) untouched
    else:
        os.replace(staging, journal)
    return len(kept)


def same_apart_from_writers(first: Path, second: Path) -> bool:
    """Whether two journals hold the same operations; each save writes under a new optuna worker id."""

    def operations(path: Path) -> list[dict]:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for record in records:
            record.pop("worker_id", None)
        return records

    try:
        return operations(first) == operations(second)
    except json.JSONDecodeError:  # a damaged journal is replaced by the study as it is
        return False


def restore(journal: Path, storage_url: str, study_name: str) -> bool:
    """Copy the journal's study into ``storage_url`` unless the storage already holds that study."""
    if not journal.is_file():
        return False
    if study_name in optuna.get_all_study_names(storage_url):
        return False
    optuna.copy_study(from_study_name=study_name, from_storage=journal_storage(journal), to_storage=storage_url)
    return True


def spent_seconds(study: optuna.Study) -> float:
    """Seconds the study's trials have taken, finished or failed (a retry's earlier tries count too)."""
    return sum(seconds_taken(trial) or 0.0 for trial in study.get_trials(deepcopy=False))
