"""One tune trial: sample values, train with them on the training parts, judge the result on the dev suite.

The trial trains in this process with the train stage's own pieces (:func:`tasks.train.plan_training`,
:func:`tasks.train.build_trainer`, :class:`tasks.checkpoints.CheckpointStore`), so a trial trains exactly as
``rerank run`` would with its values, and a retried trial (same values) resumes from the same checkpoints. Its
model is judged in memory and not kept: ``best.yaml`` is applied by training again.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from rerank_lib.cached_scorer import CachedScorer
from rerank_lib.package import CrossEncoderLogits, Sigmoid
from tasks.checkpoints import CheckpointStore
from tasks.dev_eval import DevBench, Judgement, judge, score
from tasks.evaluation_suite import SuiteEvaluator
from tasks.layout import Layout
from tasks.package_choice import choose_share, package_guards
from tasks.train import build_trainer, plan_training
from tasks.tune_data import trial_prepared
from tasks.tune_pruning import DevObjectiveEvaluator, PruningCallback, TrainingTimeBudget
from tasks.tune_space import as_settings, suggest, trial_config, trial_params
from tasks.tune_tracking import child_run, end_child, log_trial_on_parent

logger = logging.getLogger(__name__)
CHECKPOINTS_OF_TRIAL = "checkpoints_of_trial"  # user attr: the trial whose checkpoint folder this one uses
UNJUDGED = 1.0  # a guard's constraint when it has no value: it does not hold (more than any measured miss of a bar)


@dataclass
class TrialContext:
    """What every trial of one study shares: the params under the space, where things go, and the dev bench."""

    cfg: Any  # the effective params (PipelineConfig), tune section included
    base: dict[str, Any]  # the same params as a plain dict, for laying a trial's settings over
    layout: Layout
    study_dir: Path
    bench: DevBench
    sample: list[SuiteEvaluator] | None  # a sample of the dev suite, for the in-training objective (pruning)
    parent_run_id: str


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> float:
    """The optuna objective: train one config and return its dev objective (guards recorded beside it)."""
    space = ctx.cfg.tune.space
    values = suggest(trial, space)
    settings = as_settings(space, values)
    trial.set_user_attr("settings", settings)
    cfg = trial_config(ctx.base, settings, f"trial {trial.number} ({values})")
    run_id = child_run(ctx.parent_run_id, trial, values, trial_params(ctx.base, settings))
    trial.set_user_attr("mlflow_run_id", run_id)
    try:
        prepared = trial_prepared(cfg, ctx.cfg, ctx.layout.prepared, ctx.study_dir, ctx.layout.root)
        model = train_trial(trial, cfg, ctx, prepared, run_id)
        judgement, extra = judge_trial(cfg, ctx, model)
    except optuna.TrialPruned as pruned:
        record_unjudged(trial, len(judged_guards(ctx.cfg)))
        end_child(run_id, "pruned", tags={"tune.pruned_because": str(pruned)})
        raise
    except BaseException:
        end_child(run_id, "failed")
        raise
    record(trial, judgement, extra)
    end_child(run_id, "complete", {"objective": judgement.objective, **prefixed(judgement.metrics)}, tags(judgement))
    log_trial_on_parent(ctx.parent_run_id, trial.number, judgement.objective)
    return judgement.objective


def train_trial(trial: optuna.Trial, cfg: Any, ctx: TrialContext, prepared: Path, run_id: str) -> Any:
    """Train the trial's config (resuming its checkpoints if an earlier try of it died); the trained model."""
    steps = ctx.cfg.tune.eval_steps
    train = cfg.train.model_copy(update={"evaluation": cfg.train.evaluation.model_copy(update={"steps": None})})
    plan = plan_training(train, prepared, ctx.layout.root)
    if steps is not None and ctx.sample is not None:
        plan.evaluator = DevObjectiveEvaluator(ctx.sample, ctx.cfg.dev.objective)
    arguments = train.model_copy(update={"evaluation": train.evaluation.model_copy(update={"steps": steps})})
    store = CheckpointStore(checkpoint_root(trial, ctx.study_dir), plan.run_config)
    resume = store.resume_point()
    store.open(run_id)
    trainer, _, _ = build_trainer(arguments, plan, store.folder, run_id)
    pruning = PruningCallback(trial)
    trainer.add_callback(pruning)
    budget = ctx.cfg.tune.trial_max_train_seconds
    timer = TrainingTimeBudget(budget) if budget is not None else None
    if timer is not None:
        trainer.add_callback(timer)
    if resume:
        logger.info("Trial %d resumes from %s", trial.number, resume)
        trial.set_user_attr("resumed_from", str(resume))
    trainer.train(resume_from_checkpoint=resume)
    shutil.rmtree(store.folder, ignore_errors=True)  # finished or pruned: nothing left to resume
    if pruning.pruned_at is not None:
        raise optuna.TrialPruned(f"dev objective below the pruner's bar at step {pruning.pruned_at}")
    if timer is not None and timer.stopped_at is not None:
        trial.set_user_attr("over_time_budget_at_step", timer.stopped_at)
        passed = f"training passed tune.trial_max_train_seconds ({budget:g} s)"
        raise optuna.TrialPruned(f"{passed} at step {timer.stopped_at}")
    return trainer.model


def checkpoint_root(trial: optuna.Trial, study_dir: Path) -> Path:
    """The checkpoints of this trial and of its retries: ``checkpoints/trial-<first try's number>/<config id>/``.

    Per trial, not per config alone: two trials of one config running at once (a grid or TPE drawing the same
    values for two workers) would write into and delete each other's checkpoints. A retry inherits the first try's
    user attributes (optuna's retry callback copies them), so it finds the checkpoints to resume from.
    """
    first_try = trial.user_attrs.get(CHECKPOINTS_OF_TRIAL, trial.number)
    trial.set_user_attr(CHECKPOINTS_OF_TRIAL, first_try)
    return Path(study_dir) / "checkpoints" / f"trial-{first_try}"


def judge_trial(cfg: Any, ctx: TrialContext, model: Any) -> tuple[Judgement, dict[str, Any]]:
    """The trained model on the full dev suite: the cross-encoder alone, or its best package (``tune.scorer``)."""
    logits = CachedScorer(CrossEncoderLogits(model))
    if ctx.cfg.tune.scorer == "package":
        choice = choose_share(cfg, Path(), ctx.layout.prepared, ctx.layout.root, logits=logits, bench=ctx.bench)
        return choice.judgements[choice.share], {"package_share": choice.share}
    metrics = score(ctx.bench.suite, Sigmoid(logits))
    return judge(cfg.dev.objective, cfg.dev.objective.guards, metrics, ctx.bench.baselines), {}


def judged_guards(cfg: Any) -> list[Any]:
    """The guards a trial is judged by: the objective's, and the package's too when a package is what is scored."""
    if cfg.tune.scorer == "package":
        return package_guards(cfg)
    return list(cfg.dev.objective.guards)


def record_unjudged(trial: optuna.Trial, guards: int) -> None:
    """A pruned trial's guards were never judged: each is recorded as not holding.

    Why: optuna's TPE ranks a trial without constraints as feasible, ahead of every trial that misses a guard. When
    every complete trial misses one by a little (a trained cross-encoder alone below the zero-shot bi-encoder on an
    open-domain set is common), TPE would learn only from trials the pruner stopped and keep sampling next to them.
    With ``UNJUDGED`` per guard a pruned trial ranks after every complete one, feasible or not.
    """
    for index in range(guards):
        trial.set_constraint(f"guard_{index}", UNJUDGED)


def record(trial: optuna.Trial, judgement: Judgement, extra: dict[str, Any]) -> None:
    """What best.yaml, the sampler's constraints and the reports read back from the study."""
    trial.set_user_attr("metrics", judgement.metrics)
    trial.set_user_attr("guards", judgement.guards)
    trial.set_user_attr("feasible", judgement.feasible)
    for index, guard in enumerate(judgement.guards):  # <= 0 holds; a guard without a value or bar does not
        unknown = guard["value"] is None or guard["bar"] is None
        trial.set_constraint(f"guard_{index}", UNJUDGED if unknown else guard["bar"] - guard["value"])
    for key, value in extra.items():
        trial.set_user_attr(key, value)


def prefixed(metrics: dict[str, float]) -> dict[str, float]:
    return {f"dev_{key}": value for key, value in metrics.items()}


def tags(judgement: Judgement) -> dict[str, str]:
    held = "all held" if judgement.feasible else "; ".join(g["guard"] for g in judgement.guards if not g["held"])
    return {"tune.guards": held}
