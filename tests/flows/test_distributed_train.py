"""The flow's torchrun launch on CPU is real data parallelism: 2 gloo processes share the data and one gradient.

Launched as the flow's train task launches it (``training_command`` + ``run_streaming``), on the tiny model
without dropout: each rank takes half the steps of a 1-process run with the same per-device batch, rank 0 alone
writes ``artifacts/trained``, and the weights equal a 1-process run with the same global batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

from flows.launch import run_streaming, training_command
from tasks.config import LaunchConfig
from tests.tasks.train_testkit import DATASET, QUESTIONS, prepared_toy_lists

pytestmark = pytest.mark.slow


def no_dropout_base(tiny_bert_dir: Path, folder: Path) -> Path:
    """The tiny BERT with dropout off, so that runs that see the same batches end with the same weights."""
    config = BertConfig.from_pretrained(tiny_bert_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel.from_pretrained(tiny_bert_dir, config=config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_bert_dir / name).is_file():
            (folder / name).write_bytes((tiny_bert_dir / name).read_bytes())
    return folder


def toy_project(root: Path, base: Path, batch_size: int) -> Path:
    """A project root with the toy lists prepared and a params file that trains on them (2 epochs, no evaluation)."""
    prepared_toy_lists(root)
    params = {
        "prepare": {
            "datasets": {
                DATASET: {"source": {"kind": "file", "path": "unused.jsonl", "split": "train"}, "format": "listwise"},
                "toy-test": {
                    "source": {"kind": "file", "path": "unused-test.jsonl", "split": "test"},
                    "format": "reranking",
                },
            }
        },
        "train": {
            "base_model": str(base),
            "datasets": {DATASET: {"loss": "ListNetLoss"}},
            "max_length": 32,
            "epochs": 2,
            "batch_size": batch_size,
            "learning_rate": 0.01,
            "logging_steps": 1,
            "save_steps": 100,
            "evaluation": {"steps": None},
        },
        "evaluate": {"suite": {"toy": {"kind": "reranking", "dataset": "toy-test"}}},  # never run here
        "card": {},
        "tracking": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "ddp"},
        "register": {},
        "promote": {},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def launch(root: Path, params: Path, launch: LaunchConfig) -> dict:
    """Run the train stage as the flow does; the summary that rank 0 wrote."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code, tail = run_streaming(training_command(launch, root, params), root, env, 600)
    assert code == 0, tail
    return json.loads((root / "artifacts" / "trained" / "training_summary.json").read_text())


def test_torchrun_on_cpu_shares_the_data_and_matches_one_process(tiny_bert_dir: Path, tmp_path: Path) -> None:
    base = no_dropout_base(tiny_bert_dir, tmp_path / "base")
    two = tmp_path / "two-processes"
    summary = launch(two, toy_project(two, base, batch_size=1), LaunchConfig(kind="torchrun", num_processes=2))
    one = tmp_path / "one-process"
    single = launch(one, toy_project(one, base, batch_size=2), LaunchConfig())

    assert summary["global_step"] == 2 * len(QUESTIONS) // 2  # per rank: half the steps of batch 1 on one process
    assert single["global_step"] == summary["global_step"]
    initial = BertModel.from_pretrained(base).state_dict()
    trained = load_file(two / "artifacts" / "trained" / "model.safetensors")
    reference = load_file(one / "artifacts" / "trained" / "model.safetensors")
    encoder = [name for name in trained if name.startswith("bert.")]
    moved = max(float((reference[k] - initial[k.removeprefix("bert.")]).abs().max()) for k in encoder)
    # ListNet does not change when every score shifts: the head's bias gets only rounding noise as its gradient,
    # which Adam scales up to full steps, so it is left out.
    apart = max(float((trained[k] - reference[k]).abs().max()) for k in trained if k != "classifier.bias")
    assert moved > 1e-3  # training moved the weights
    # Equal up to float summation order (Adam rescales tiny gradient differences): far below what training moved.
    assert apart < 0.02 * moved, (apart, moved)
