"""benchmarks/tune_study.py: its progress table (read without training) and the window a run leaves its trials."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from study_journal import save
from tune_study import (
    from_root,
    longest_trial_seconds,
    main,
    markdown,
    recipes_to_measure,
    trial_window,
    trials_markdown,
)

from tasks.config import load_params
from tasks.tune_config import TuneConfig
from tasks.tune_study import open_study

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True}}


def saved_study(folder: Path, journal: Path) -> None:
    """params.yaml's study name with one complete trial, one pruned and one left running, saved to ``journal``."""
    name = load_params(ROOT / "params.yaml").tune.study
    study = open_study(TuneConfig(study=name, trials=4, space=SPACE), folder, {"space": "v1"})
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        trial = study.ask()
        trial.suggest_float("train.learning_rate", 1e-5, 1e-4, log=True)
        if state == TrialState.COMPLETE:
            trial.set_user_attr("metrics", {"wikiqa_ndcg@10": 0.7125, "wikiqa_map": 0.61})
            study.tell(trial, 0.7125)
        elif state == TrialState.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
    save(f"sqlite:///{folder / f'{name}.db'}", name, journal)


def test_progress_reads_the_journal_when_the_work_folder_has_no_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.jsonl"
    saved_study(tmp_path / "elsewhere", journal)
    work = tmp_path / "work"

    assert main(["--progress", "--journal", str(journal), "--work-dir", str(work)]) == 0

    out = capsys.readouterr().out
    assert f"({journal}): 2 trials finished" in out  # complete and pruned count
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| trial")]
    assert [row.split(" | ")[1] for row in rows] == ["complete", "pruned", "retried", "waiting"]
    assert [row.split(" | ")[4] for row in rows] == ["0", "0", "0", "-"]  # minutes; the queued retry has none yet
    assert rows[0].split(" | ")[2:4] == ["0.7125", "0.7125"]  # the objective, then wikiqa's NDCG@10 (not its MAP)
    assert "| wikiqa |" in out and "wikiqa_map" not in out and "learning_rate=" in out
    assert not work.exists()  # reading trains nothing and creates no storage


def test_progress_without_any_study_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--progress", "--journal", str(tmp_path / "none.jsonl"), "--work-dir", str(tmp_path / "w")]) == 0
    assert "neither" in capsys.readouterr().out and not (tmp_path / "w").exists()


def test_the_trials_table_marks_the_params_trial_and_shows_minutes() -> None:
    rows = [
        {
            "number": 0,
            "state": "complete",
            "objective": 0.8,
            "metrics": {"a_ndcg@10": 0.8},
            "seconds": 1500.0,
            "values": {"train.learning_rate": 5e-05, "loss": "lambda"},
        },
        {
            "number": 1,
            "state": "running",
            "objective": None,
            "metrics": None,
            "seconds": None,
            "values": {"train.learning_rate": 7.7e-05, "loss": "ranknet"},
        },
    ]
    table = trials_markdown(rows, {"number": 0, "state": "complete", "objective": 0.8})
    lines = table.splitlines()
    assert lines[0] == "| trial | state | dev objective | a | minutes | values |"
    assert lines[2] == "| 0 (params.yaml) | complete | 0.8000 | 0.8000 | 25 | learning_rate=5e-05, loss=lambda |"
    assert lines[3] == "| 1 | running | - | - | - | learning_rate=7.7e-05, loss=ranknet |"


def test_a_run_window_leaves_room_for_the_longest_trial() -> None:
    assert trial_window(budget_left=20_000, run_minutes=None, longest_trial=3_000) == 20_000  # the budget alone
    assert trial_window(budget_left=20_000, run_minutes=120, longest_trial=3_000) == 4_200  # 2 h less the longest
    assert trial_window(budget_left=1_000, run_minutes=120, longest_trial=3_000) == 1_000  # the budget ends first
    assert trial_window(budget_left=20_000, run_minutes=40, longest_trial=3_000) < 1  # no trial fits: none starts


def test_the_longest_trial_counts_complete_trials_only() -> None:
    study = optuna.create_study(direction="maximize")
    for state, minutes in ((TrialState.COMPLETE, 30), (TrialState.COMPLETE, 50), (TrialState.PRUNED, 70)):
        trial = create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None)
        trial.datetime_start = dt.datetime(2026, 1, 1, 12, 0)
        trial.datetime_complete = trial.datetime_start + dt.timedelta(minutes=minutes)
        study.add_trial(trial)
    assert longest_trial_seconds(study) == 50 * 60  # a pruned trial stopped early; its time says nothing of a full one
    assert longest_trial_seconds(optuna.create_study()) == 0.0


def test_the_picked_recipe_is_measured_beside_the_hand_found_one(tmp_path: Path) -> None:
    best = tmp_path / "best.yaml"
    summary = {"best": {"number": 17}, "params_trial": {"number": 5, "state": "complete", "objective": 0.81}}
    assert recipes_to_measure(summary, best, skip_hand_found=False) == {
        "tuned": ["--set-from", from_root(best)],
        "hand_found": [],
    }
    assert recipes_to_measure(summary, best, skip_hand_found=True) == {"tuned": ["--set-from", from_root(best)]}
    no_params_trial = {"best": {"number": 3}, "params_trial": None}  # tune.enqueue_params off
    assert list(recipes_to_measure(no_params_trial, best, skip_hand_found=False)) == ["tuned", "hand_found"]


def test_when_params_yaml_wins_its_recipe_is_measured_once(tmp_path: Path) -> None:
    summary = {"best": {"number": 5}, "params_trial": {"number": 5, "state": "complete", "objective": 0.81}}
    for skip in (False, True):  # the picked recipe is measured even when the hand-found one is skipped
        assert recipes_to_measure(summary, tmp_path / "best.yaml", skip_hand_found=skip) == {"hand_found": []}
    nothing_finished = {"best": None, "params_trial": None}
    assert list(recipes_to_measure(nothing_finished, tmp_path / "best.yaml", False)) == ["tuned", "hand_found"]


def test_the_report_names_one_recipe_when_params_yaml_won() -> None:
    study = {
        "study": "recipe",
        "trials_finished": 1,
        "trials": [],
        "baselines": {},
        "best": {"number": 5, "objective": 0.81, "feasible": True, "metrics": {}},
        "params_trial": {"number": 5, "state": "complete", "objective": 0.81},
    }
    quality_result = {
        "recipe": "Default recipe",
        "date": "2026-12-07",
        "runs": [],
        "table": {},
        "targets": [],
        "machine": {"logical_cpus": 2},
        "command": "python benchmarks/quality.py",
    }
    report = {
        "date": "2026-12-07",
        "machine": {"logical_cpus": 2, "cpu": "cpu"},
        "study_hours": 8.0,
        "study": study,
        "best_yaml": "# nothing\n",
        "command": "python benchmarks/tune_study.py",
        "picked_params": True,
        "hand_found": quality_result,
    }
    text = markdown(report)
    assert "### The recipe the study picked: params.yaml as it is, the hand-found recipe" in text
    assert text.count("### ") == 1


def test_paths_inside_the_project_are_passed_relative_to_it(tmp_path: Path) -> None:
    assert from_root(ROOT / "benchmarks" / "results" / "tune-study-tuned") == "benchmarks/results/tune-study-tuned"
    assert from_root(tmp_path / "out") == str(tmp_path.resolve() / "out")  # outside: as it is
