"""Hyperparameter search with optuna (loss as a function of the model) and reporting to MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_testkit import make_args, varied_pairs

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from rerank_lib.evaluation import CrossEncoderRerankingEvaluator
from rerank_lib.losses import BinaryCrossEntropyLoss

SAMPLES = [{"query": "capital of france", "positive": ["paris france"], "negative": ["a dog eats", "red car"]}]


def test_optuna_search_runs_two_trials_with_a_fresh_model_and_loss(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import optuna

    models: list[CrossEncoder] = []

    def model_init() -> CrossEncoder:
        torch.manual_seed(0)
        models.append(CrossEncoder(tiny_bert_dir, device="cpu"))
        return models[-1]

    losses: list[BinaryCrossEntropyLoss] = []

    def loss(model: CrossEncoder) -> BinaryCrossEntropyLoss:
        losses.append(BinaryCrossEntropyLoss(model))
        return losses[-1]

    trainer = CrossEncoderTrainer(
        model_init=model_init,
        args=make_args(tmp_path, max_steps=2),
        train_dataset=varied_pairs(8),
        loss=loss,
        evaluator=CrossEncoderRerankingEvaluator(SAMPLES, name="dev"),
    )
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)},
        compute_objective=lambda metrics: metrics["eval_dev_ndcg@10"],
        n_trials=2,
        direction="maximize",
        backend="optuna",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    assert 0.0 <= best.objective <= 1.0 and set(best.hyperparameters) == {"learning_rate"}
    assert len(models) == 3 and len(losses) == 3  # one at construction, one per trial
    assert [item.model for item in losses] == models


def test_report_to_mlflow_records_params_and_metrics(
    tiny_model: CrossEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "trainer-test")
    mlflow.set_tracking_uri(uri)  # earlier tests may have set MLflow's process-wide URI, which beats the env var
    args = make_args(tmp_path, max_steps=2, report_to="mlflow", eval_strategy="steps", eval_steps=2, run_name="tiny")
    evaluator = CrossEncoderRerankingEvaluator(SAMPLES, name="dev")
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(8), evaluator=evaluator)
    trainer.train()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("trainer-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["batch_sampler"] == "batch_sampler" and float(run.data.params["learning_rate"]) == 1e-3
    assert {"loss", "eval_dev_ndcg_10", "train_loss"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 2


def test_report_to_tensorboard_writes_the_losses(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = make_args(tmp_path, max_steps=2, report_to="tensorboard", batch_sampler="no_duplicates")
    CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(8)).train()
    (run_dir,) = (tmp_path / "checkpoints" / "runs").iterdir()
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == [1, 2]
    assert "no_duplicates" in events.Tensors("args/text_summary")[0].tensor_proto.string_val[0].decode()
