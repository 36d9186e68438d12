"""CrossEncoderTrainer with push_to_hub=True, end to end against the loopback Hub server (tests/hub_server.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load
from training_testkit import make_args, varied_pairs

from rerank_lib import CrossEncoder, CrossEncoderTrainer
from tests.hub_server import LocalHub, isolated_hub

TOKEN = "hf_TrainerTokenDoNotLeak0123456789abcd"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalHub]:
    """A loopback Hub that answers 401 without TOKEN; no saved login or HF_TOKEN can stand in for hub_token."""
    with isolated_hub(monkeypatch, tmp_path, TOKEN, set_endpoint=True) as server:
        yield server


def assert_no_token(hub: LocalHub, *texts: str) -> None:
    """The token is in no pushed file (README, configs, pickled arguments) and in none of the given texts."""
    for repo in hub.repos.values():
        for ref, tree in repo.refs.items():
            for name, data in tree.items():
                assert TOKEN.encode() not in data, f"token in {repo.repo_id}@{ref}:{name}"
    for commit in hub.commits:
        assert TOKEN not in commit.summary and TOKEN not in commit.description
    for text in texts:
        assert TOKEN not in text


def assert_weights_equal(pushed: bytes, model: CrossEncoder) -> None:
    weights = load(pushed)
    local = model.model.state_dict()
    assert weights and set(weights) <= set(local)
    for name, tensor in weights.items():
        assert torch.equal(tensor, local[name].cpu()), name


def test_save_model_after_training_pushes_model_tokenizer_and_card(
    tiny_model: CrossEncoder,
    hub: LocalHub,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    args = make_args(
        tmp_path, max_steps=3, push_to_hub=True, hub_model_id="org/tiny-trained", hub_token=TOKEN, log_level="info"
    )
    with caplog.at_level(logging.DEBUG):
        trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(12))
        trainer.train()
        assert not hub.commits  # hub_strategy "end": nothing is pushed while training
        trainer.save_model()  # transformers' end-of-training push: save_model() with push_to_hub=True

    assert trainer.state.global_step == 3
    assert [commit.summary for commit in hub.commits] == ["Model save"]
    files = hub.files("org/tiny-trained")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= set(files)
    assert_weights_equal(files["model.safetensors"], tiny_model)
    assert json.loads(files["config.json"])["architectures"] == ["BertForSequenceClassification"]
    reloaded = CrossEncoder(Path(args.output_dir), device="cpu")  # the local save equals what was pushed
    assert_weights_equal(files["model.safetensors"], reloaded)

    card = files["README.md"].decode()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["library_name"] == "rerank_lib" and "generated_from_trainer" in header["tags"]
    assert 'CrossEncoder("org/tiny-trained")' in card
    assert "BinaryCrossEntropyLoss" in card  # the card the trainer collected, not a bare one
    assert all(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in hub.requests)
    assert not hub.unhandled
    out, err = capfd.readouterr()
    assert_no_token(hub, caplog.text, out, err, json.dumps(trainer.state.log_history), card)


def test_checkpoint_strategy_pushes_each_save_and_a_resumable_last_checkpoint(
    tiny_model: CrossEncoder, hub: LocalHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = make_args(
        tmp_path,
        max_steps=4,
        save_strategy="steps",
        save_steps=2,
        push_to_hub=True,
        hub_model_id="org/tiny-ckpt",
        hub_strategy="checkpoint",
        hub_token=TOKEN,
    )
    with caplog.at_level(logging.DEBUG):
        trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(16))
        trainer.train()
    assert [commit.summary for commit in hub.commits] == [
        "Training in progress, step 2",
        "Training in progress, step 2, checkpoint",
        "Training in progress, step 4",
        "Training in progress, step 4, checkpoint",
    ]
    files = hub.files("org/tiny-ckpt")
    assert_weights_equal(files["model.safetensors"], tiny_model)  # the last save is the final model
    assert_weights_equal(files["last-checkpoint/model.safetensors"], tiny_model)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"):
        assert f"last-checkpoint/{name}" in files, name
    assert json.loads(files["last-checkpoint/trainer_state.json"])["global_step"] == 4
    pushed_args = torch.load(io.BytesIO(files["last-checkpoint/training_args.bin"]), weights_only=False)
    assert pushed_args.hub_token is None and pushed_args.hub_model_id == "org/tiny-ckpt"
    assert not any(name.startswith("checkpoint-") for name in files)
    assert_no_token(hub, caplog.text)

    # The pushed checkpoint resumes: a longer run picks up at step 5.
    downloaded = tmp_path / "downloaded"
    for name, data in files.items():
        if name.startswith("last-checkpoint/"):
            target = downloaded / name.removeprefix("last-checkpoint/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    resumed_args = make_args(tmp_path / "resumed", max_steps=6, save_strategy="no")
    resumed = CrossEncoderTrainer(tiny_model, args=resumed_args, train_dataset=varied_pairs(16))
    resumed.train(resume_from_checkpoint=str(downloaded))
    assert [row["step"] for row in resumed.state.log_history if "loss" in row] == [1, 2, 3, 4, 5, 6]


def test_bare_hub_model_id_lands_in_the_token_owners_namespace(
    tiny_model: CrossEncoder, hub: LocalHub, tmp_path: Path
) -> None:
    args = make_args(tmp_path, max_steps=2, push_to_hub=True, hub_model_id="tiny-bare", hub_token=TOKEN)
    trainer = CrossEncoderTrainer(tiny_model, args=args, train_dataset=varied_pairs(8))
    trainer.train()
    url = trainer.push_to_hub()
    assert set(hub.repos) == {"test-user/tiny-bare"}
    assert url == f"{hub.url}/test-user/tiny-bare/commit/{hub.commits[-1].oid}"
    assert hub.commits[-1].summary == "End of training"
    assert_weights_equal(hub.files("test-user/tiny-bare")["model.safetensors"], tiny_model)
