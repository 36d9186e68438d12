"""best.json's trial rows: what each trial tried, its dev numbers and how long it took."""

from __future__ import annotations

import datetime as dt

import optuna
from optuna.trial import TrialState, create_trial

from tasks.tune_result import seconds_taken, trial_rows

LR = optuna.distributions.FloatDistribution(1e-5, 1e-4, log=True)


def test_rows_carry_each_trials_values_metrics_and_seconds() -> None:
    study = optuna.create_study(direction="maximize")
    values = {"train.learning_rate": 5e-5}
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=0.8,
            params=values,
            distributions={"train.learning_rate": LR},
            user_attrs={"metrics": {"wikiqa_ndcg@10": 0.8}, "feasible": True},
        )
    )
    study.add_trial(create_trial(state=TrialState.WAITING, params=values, distributions={"train.learning_rate": LR}))

    done, waiting = trial_rows(study)

    assert done["metrics"] == {"wikiqa_ndcg@10": 0.8} and done["values"] == values and done["feasible"] is True
    assert done["seconds"] == 0.0  # create_trial starts and ends it at once
    assert waiting["state"] == "waiting" and waiting["seconds"] is None and waiting["metrics"] is None


def test_seconds_taken_is_start_to_end_and_none_until_it_ends() -> None:
    trial = create_trial(state=TrialState.COMPLETE, value=1.0)
    trial.datetime_start = dt.datetime(2026, 1, 1, 12, 0, 0)
    trial.datetime_complete = dt.datetime(2026, 1, 1, 12, 25, 30)
    assert seconds_taken(trial) == 1530.0
    trial.datetime_complete = None
    assert seconds_taken(trial) is None
