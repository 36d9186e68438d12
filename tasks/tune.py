"""Stage `tune`: search the recipe with optuna, each trial judged on the dev suite, and write ``best.yaml``.

``tune.space`` (params keys or named variants) is searched by optuna's TPE sampler (or random, or a grid): each
trial trains on the training parts with its values (:mod:`tasks.tune_trial`), and a pruner fed by the in-training
dev objective stops trials that trail. The objective is ``dev.objective`` (one dev metric or a weighted mean), of the
cross-encoder alone or of its best package (``tune.scorer``); guards (``dev.objective.guards``, e.g. never below the
zero-shot bi-encoder on an open-domain dev set) are constraints: the best trial is the best whose guards hold.

Trials count towards ``tune.trials`` however many processes run them: ``run_tune`` runs trials until the study has
that many (or ``max_trials`` from this process, or ``tune.timeout``), so the DVC stage runs the whole study in one
process, and each Prefect task of the flow (flows/tune.py) runs one. An interrupted study resumes where it stopped
(:mod:`tasks.tune_study`). Outputs, under ``artifacts/tune/``: ``<study>.db``, ``<study>/best.yaml`` and
``best.json`` (copied to ``artifacts/tune/``), and the MLflow parent run ``tune-<study>`` with a child per trial.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from rerank_lib.errors import ConfigError
from tasks.dev_eval import build_dev_suite, dev_bench
from tasks.io import file_md5, write_json_atomic
from tasks.layout import Layout
from tasks.tune_result import write_result
from tasks.tune_space import check_space
from tasks.tune_study import best_trial, enqueue_params, finished, open_study, running, storage_url
from tasks.tune_tracking import end_parent, log_baselines, parent_run
from tasks.tune_trial import TrialContext, run_trial

logger = logging.getLogger(__name__)

BASELINES_FILE = "baselines.json"


@dataclass(frozen=True)
class TuneResult:
    study: str
    storage: str
    trials_finished: int
    trials_planned: int
    best_trial: int | None
    best_objective: float | None
    files: list[Path]


def run_tune(cfg: Any, layout: Layout, max_trials: int | None = None, summarize: bool = True) -> TuneResult:
    """Run trials until the study has ``tune.trials`` (``max_trials``: at most that many from this process).

    ``summarize``: write best.yaml/best.json and close the MLflow parent run (the flow's workers leave that to it).
    """
    tune = check_tune(cfg)
    base = cfg.model_dump(mode="json", exclude_unset=True)
    study_dir = layout.tune_dir / tune.study
    dev_data = dev_fingerprint(cfg, layout)
    study = open_study(tune, layout.tune_dir, study_fingerprint(cfg, base, dev_data))  # refused before any scoring
    enqueue_params(study, tune, cfg.model_dump(mode="json"))
    bench = dev_bench(cfg, layout.prepared, layout.root, read_baselines(study_dir, dev_data))
    write_json_atomic(study_dir / BASELINES_FILE, {"fingerprint": dev_data, **bench.baselines})
    parent = parent_run(study, cfg.tracking, tune, layout.root)
    log_baselines(parent, bench.baselines)
    sample = None
    if tune.eval_steps is not None:
        sample = build_dev_suite(cfg, layout.prepared, layout.root, bench.bi_encoder, tune.eval_max_queries)
    ctx = TrialContext(cfg, base, layout, study_dir, bench, sample, parent)
    try:
        run_trials(study, ctx, max_trials)
    except BaseException:
        end_parent(parent, None, [], complete=False)  # KILLED: the study resumes into the same parent run
        raise
    files = write_result(study, tune, bench.baselines, layout.tune_dir) if summarize else []
    chosen = best_trial(study)
    if summarize:
        end_parent(parent, chosen, files, finished(study) >= tune.trials)
    return TuneResult(
        tune.study,
        storage_url(tune, layout.tune_dir),
        finished(study),
        tune.trials,
        chosen.number if chosen else None,
        chosen.value if chosen else None,
        files,
    )


def run_trials(study: optuna.Study, ctx: TrialContext, max_trials: int | None) -> None:
    """Trials one after another until the study is full, ``max_trials`` ran here, or ``tune.timeout`` passed.

    While other processes run the last trials, wait for them; a trial whose process died becomes stale after the
    grace period and is retried here.
    """
    tune, started, ran = ctx.cfg.tune, time.monotonic(), 0
    while finished(study) < tune.trials and (max_trials is None or ran < max_trials):
        if tune.timeout is not None and time.monotonic() - started > tune.timeout:
            logger.warning("tune.timeout (%.0f s) passed: no new trial starts", tune.timeout)
            break
        if finished(study) + running(study) >= tune.trials:
            time.sleep(min(tune.heartbeat_seconds, 10))
            optuna.storages.fail_stale_trials(study)  # a dead process's trial is retried
            continue
        try:
            study.optimize(lambda trial: run_trial(trial, ctx), n_trials=1, catch=(ConfigError,))
        except KeyboardInterrupt:
            retry_interrupted(study)
            raise
        ran += 1
        gc.collect()  # the trial's model, optimizer and data go before the next trial allocates its own


def retry_interrupted(study: optuna.Study) -> None:
    """A trial stopped by Ctrl-C is enqueued again, like one whose process died, so a resumed study reruns it."""
    trials = study.get_trials(deepcopy=False)
    if trials and trials[-1].state == optuna.trial.TrialState.FAIL:  # the trial this process was running
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, trials[-1])


def check_tune(cfg: Any) -> Any:
    """The tune section, with every value of its space valid and the dev data untouched by it."""
    if cfg.tune is None:
        raise ConfigError("params have no `tune` section (study, trials, space); see docs/tuning.md")
    # The built data the suites read (a beir evaluator reads only an entry's split rule, which no space may change).
    suites = [*cfg.dev.suite.values(), *cfg.evaluate.suite.values()]
    judged = {spec.dataset for spec in suites if spec.kind != "beir"}
    check_space(cfg.tune, cfg.model_dump(mode="json", exclude_unset=True), judged)
    return cfg.tune


def dev_fingerprint(cfg: Any, layout: Layout) -> str:
    """The dev suite's settings and the files it reads: the baselines' numbers hold while this holds."""
    digest = hashlib.sha256(json.dumps(cfg.dev.model_dump(mode="json"), sort_keys=True).encode())
    for spec in cfg.dev.suite.values():
        if spec.dataset is not None:
            for path in sorted((layout.prepared / spec.dataset).glob("*.parquet")):
                digest.update(f"{path.name}:{file_md5(path)}".encode())
    return digest.hexdigest()


def study_fingerprint(cfg: Any, base: dict[str, Any], dev_data: str) -> dict[str, Any]:
    """What a resumed study must still have: its space, scorer, the params under it and the dev data."""
    tune = cfg.tune.model_dump(mode="json", include={"space", "scorer", "sampler", "eval_steps", "eval_max_queries"})
    judged_by = ("prepare", "train", "dev", "package") if cfg.tune.scorer == "package" else ("prepare", "train", "dev")
    recipe = {key: value for key, value in base.items() if key in judged_by}
    return {"tune": tune, "params": recipe, "dev_data": dev_data}


def read_baselines(study_dir: Path, fingerprint: str) -> dict[str, dict[str, float]] | None:
    """The baselines' dev numbers of an earlier run of the study, if the dev suite is still the same."""
    path = Path(study_dir) / BASELINES_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.pop("fingerprint", None) != fingerprint:
        return None
    return data
