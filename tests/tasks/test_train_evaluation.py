"""Evaluation during training: curves every N steps and at the end, in MLflow and eval_log.csv, weights untouched."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from safetensors.torch import load_file

from rerank_lib.errors import ConfigError
from tasks.config import TrackingConfig, TrainConfig, TrainEvaluationConfig
from tasks.train import run_train
from tasks.train_evaluation import EVAL_LOG_FILE, build_training_evaluator, write_eval_log
from tests.tasks.train_testkit import QUESTIONS, prepared_toy_lists

DOCUMENTS = [doc for _, positive, negative in QUESTIONS for doc in (positive, negative)]
CORPUS = {f"d{i}": text for i, text in enumerate(DOCUMENTS)}


def _beir(root: Path) -> None:
    """A BEIR folder whose dev qrels judge each question's right answer."""
    folder = root / "beir" / "toy"
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": doc_id, "title": "", "text": text} for doc_id, text in CORPUS.items()]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in corpus) + "\n")
    queries = [{"_id": f"q{i}", "text": question} for i, (question, _, _) in enumerate(QUESTIONS)]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(row) for row in queries) + "\n")
    qrels = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{2 * i}\t1" for i in range(len(QUESTIONS))]
    (folder / "qrels" / "dev.tsv").write_text("\n".join(qrels) + "\n")


def _train(root: Path, base: Path, steps: int | None) -> Path:
    cfg = TrainConfig(
        base_model=str(base),
        datasets={"toy-lists": {"loss": "ListNetLoss"}},
        max_length=32,
        epochs=5,
        batch_size=2,
        logging_steps=1,
        save_steps=100,
        learning_rate=1e-3,
        evaluation=TrainEvaluationConfig(
            steps=steps, folder="beir/toy", split="dev", top_k=4, max_queries=4, batch_size=8
        ),
    )
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="train-eval")
    out = root / "artifacts" / "trained"
    run_train(cfg, tracking, prepared_toy_lists(root), root / "artifacts" / "checkpoints", out, root)
    return out


def test_curves_every_n_steps_and_at_the_end_without_changing_the_weights(tiny_bert_dir: Path, tmp_path: Path) -> None:
    with_eval, without = tmp_path / "with", tmp_path / "without"
    for root in (with_eval, without):
        _beir(root)
    trained = _train(with_eval, tiny_bert_dir, steps=4)  # 3 steps per epoch, 15 in all: 4, 8, 12 and the end
    plain = _train(without, tiny_bert_dir, steps=None)

    log = pd.read_csv(trained / EVAL_LOG_FILE)
    assert log["step"].tolist() == [4, 8, 12, 15]
    assert {"ndcg_at_10", "mrr_at_10", "map", "bm25_ndcg_at_10"} <= set(log.columns)
    assert log["ndcg_at_10"].between(0, 1).all() and log["bm25_ndcg_at_10"].nunique() == 1  # BM25 does not train
    assert not (plain / EVAL_LOG_FILE).exists()

    # Evaluating consumes no randomness and touches no weights: both runs end with the same model.
    weights, reference = load_file(trained / "model.safetensors"), load_file(plain / "model.safetensors")
    assert weights.keys() == reference.keys()
    assert all(bool((weights[name] == reference[name]).all()) for name in weights)

    run_id = json.loads((trained / "training_summary.json").read_text())["mlflow_run_id"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{with_eval / 'mlflow.db'}")
    history = client.get_metric_history(run_id, "eval_toy_dev_mean_ndcg_at_10")  # named after the folder and split
    assert [point.step for point in history] == [4, 8, 12, 15]
    assert [point.value for point in history] == pytest.approx(log["ndcg_at_10"].tolist())


def test_a_rerun_without_evaluation_removes_the_old_curves(tiny_bert_dir: Path, tmp_path: Path) -> None:
    _beir(tmp_path)
    out = tmp_path / "artifacts" / "trained"
    out.mkdir(parents=True)
    (out / EVAL_LOG_FILE).write_text("step,ndcg_at_10\n1,0.5\n")
    _train(tmp_path, tiny_bert_dir, steps=None)
    assert not (out / EVAL_LOG_FILE).exists()


def test_a_missing_evaluation_folder_fails_before_training(tmp_path: Path) -> None:
    assert build_training_evaluator(TrainEvaluationConfig(steps=None, folder="nowhere"), tmp_path) is None
    with pytest.raises(ConfigError, match=r"train\.evaluation\.folder/split: .*nowhere/qrels/dev\.tsv does not exist"):
        build_training_evaluator(TrainEvaluationConfig(steps=10, folder="nowhere", split="dev"), tmp_path)


def test_evaluation_during_training_needs_a_folder_and_names_its_metrics_after_it() -> None:
    with pytest.raises(ValueError, match="train.evaluation.folder is required"):
        TrainEvaluationConfig(steps=10)
    assert TrainEvaluationConfig(steps=10, folder="data/mine-beir").evaluator_name == "mine_beir_test"
    assert TrainEvaluationConfig(steps=10, folder="x", name="held out").evaluator_name == "held_out"


def test_eval_log_rows_columns_and_repeated_steps(tmp_path: Path) -> None:
    history = [
        {"loss": 0.9, "step": 1, "epoch": 0.1},
        {
            "eval_toy_dev_mean_ndcg@10": 0.5,
            "eval_toy_dev_mean_base_ndcg@10": 0.4,
            "eval_toy_dev_toy_ndcg@10": 0.5,
            "step": 2,
        },
        {"eval_toy_dev_mean_ndcg@10": 0.6, "eval_toy_dev_mean_base_ndcg@10": 0.4, "step": 4, "epoch": 0.4},
        {
            "eval_toy_dev_mean_ndcg@10": 0.7,
            "eval_toy_dev_mean_base_ndcg@10": 0.4,
            "step": 4,
            "epoch": 0.4,
        },  # resumed run
    ]
    frame = write_eval_log(tmp_path / EVAL_LOG_FILE, history, TrainEvaluationConfig(folder="toy", split="dev"))
    assert frame.columns.tolist() == ["step", "epoch", "bm25_ndcg_at_10", "ndcg_at_10"]
    assert frame["step"].tolist() == [2, 4] and frame["ndcg_at_10"].tolist() == [0.5, 0.7]
    assert pd.read_csv(tmp_path / EVAL_LOG_FILE)["ndcg_at_10"].tolist() == [0.5, 0.7]
