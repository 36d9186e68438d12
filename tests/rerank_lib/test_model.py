"""CrossEncoder: loading rules, predict/rank behaviour, and file compatibility with sentence-transformers."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from rerank_lib import CrossEncoder
from rerank_lib.errors import ModelLoadError

PAIRS = [
    ("what is the capital of france", "paris is the capital of france"),
    ("what is the capital of france", "a dog runs"),
    ("who reads a book", "the child reads a big red book in the train"),
]


def test_plain_bert_gets_one_label_and_sigmoid(tiny_model: CrossEncoder) -> None:
    assert tiny_model.num_labels == 1
    assert isinstance(tiny_model.activation_fn, torch.nn.Sigmoid)
    assert tiny_model.max_length == 128  # min(tokenizer limit 128, position embeddings 128)


def test_multilabel_defaults_to_identity(tiny_multilabel_model: CrossEncoder) -> None:
    assert tiny_multilabel_model.num_labels == 3
    assert isinstance(tiny_multilabel_model.activation_fn, torch.nn.Identity)


def test_max_length_is_settable_and_bounded(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(tiny_bert_dir, max_length=16)
    assert model.max_length == 16
    model.max_length = 24  # set after loading, as a training recipe does
    model.save_pretrained(tmp_path / "saved")
    assert CrossEncoder(tmp_path / "saved").max_length == 24  # kept across save and load
    assert CrossEncoder(tmp_path / "saved", max_length=100).max_length == 100  # still settable upwards at load
    with pytest.raises(ValueError, match="position embeddings"):
        CrossEncoder(tiny_bert_dir, max_length=1000)


def test_predict_shapes_single_pair_and_empty(tiny_model: CrossEncoder) -> None:
    scores = tiny_model.predict(PAIRS)
    assert isinstance(scores, np.ndarray) and scores.shape == (3,)
    assert ((scores > 0) & (scores < 1)).all()
    single = tiny_model.predict(PAIRS[0])
    assert np.isclose(float(single), scores[0], atol=1e-6)
    assert tiny_model.predict([]).shape == (0,)
    as_tensor = tiny_model.predict(PAIRS, convert_to_tensor=True)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (3,)


def test_predict_returns_input_order_whatever_the_batching(tiny_model: CrossEncoder) -> None:
    one_by_one = np.array([float(tiny_model.predict(pair)) for pair in PAIRS])
    batched = tiny_model.predict(PAIRS, batch_size=2)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_predict_truncates_long_pairs(tiny_model: CrossEncoder) -> None:
    tiny_model.max_length = 12
    features = tiny_model.tokenize([("the " * 50, "cat " * 50)])
    assert features["input_ids"].shape[1] == 12
    assert tiny_model.predict([("the " * 50, "cat " * 50)]).shape == (1,)


def test_activation_and_softmax_options(tiny_model: CrossEncoder, tiny_multilabel_model: CrossEncoder) -> None:
    raw = tiny_model.predict(PAIRS, activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(torch.sigmoid(torch.tensor(raw)).numpy(), tiny_model.predict(PAIRS), atol=1e-6)
    # apply_softmax only changes multi-label outputs
    np.testing.assert_allclose(tiny_model.predict(PAIRS, apply_softmax=True), tiny_model.predict(PAIRS), atol=1e-6)
    probs = tiny_multilabel_model.predict(PAIRS, apply_softmax=True)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), np.ones(3), atol=1e-5)


def test_progress_bar_defaults_to_logging_level(tiny_model: CrossEncoder, capsys: pytest.CaptureFixture) -> None:
    logging.getLogger("rerank_lib.model").setLevel(logging.INFO)
    tiny_model.predict(PAIRS * 4, batch_size=2)
    assert "Scoring" in capsys.readouterr().err
    logging.getLogger("rerank_lib.model").setLevel(logging.WARNING)
    tiny_model.predict(PAIRS * 4, batch_size=2)
    assert "Scoring" not in capsys.readouterr().err


def test_rank_orders_best_first(tiny_model: CrossEncoder) -> None:
    documents = [b for _, b in PAIRS]
    ranking = tiny_model.rank("what is the capital of france", documents, return_documents=True)
    scores = [item["score"] for item in ranking]
    assert scores == sorted(scores, reverse=True)
    assert sorted(item["corpus_id"] for item in ranking) == [0, 1, 2]
    assert all(item["text"] == documents[item["corpus_id"]] for item in ranking)
    assert len(tiny_model.rank("q", documents, top_k=2)) == 2
    assert "text" not in tiny_model.rank("q", documents)[0]


def test_rank_refuses_multilabel_models(tiny_multilabel_model: CrossEncoder) -> None:
    with pytest.raises(ValueError, match="num_labels=3"):
        tiny_multilabel_model.rank("q", ["a", "b"])


def test_save_and_reload_round_trip(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save_pretrained(tmp_path / "model")
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["sentence_transformers"]["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    assert config["architectures"] == ["BertForSequenceClassification"]
    reloaded = CrossEncoder(tmp_path / "model")
    assert reloaded.num_labels == 1
    np.testing.assert_allclose(reloaded.predict(PAIRS), tiny_model.predict(PAIRS), atol=1e-6)


def test_save_replaces_the_folder_atomically(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    target = tmp_path / "model"
    tiny_model.save(target)
    (target / "stale.txt").write_text("from an older save")
    tiny_model.save(target)
    assert not (target / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def test_saved_activation_is_restored(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(tiny_bert_dir, activation_fn=torch.nn.Tanh())
    model.save(tmp_path / "m")
    assert isinstance(CrossEncoder(tmp_path / "m").activation_fn, torch.nn.Tanh)


def test_untrusted_activation_path_falls_back_with_warning(
    tiny_model: CrossEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tiny_model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["sentence_transformers"]["activation_fn"] = "os.system"
    config_path.write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        model = CrossEncoder(tmp_path / "m")
    assert isinstance(model.activation_fn, torch.nn.Sigmoid)
    assert "trust_remote_code" in caplog.text


def test_loads_sentence_transformers_5_4_layout(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """Newer sentence-transformers keep the activation in config_sentence_transformers.json."""
    model = CrossEncoder(tiny_bert_dir, num_labels=1)
    model.model.save_pretrained(tmp_path / "st")
    model.tokenizer.save_pretrained(tmp_path / "st")
    (tmp_path / "st" / "config_sentence_transformers.json").write_text(
        json.dumps({"model_type": "CrossEncoder", "activation_fn": "torch.nn.modules.linear.Identity"})
    )
    loaded = CrossEncoder(tmp_path / "st")
    assert isinstance(loaded.activation_fn, torch.nn.Identity)


def test_loads_plain_hf_classifier_with_its_label_count(tiny_bert_dir: Path, tmp_path: Path) -> None:
    config = BertConfig.from_pretrained(tiny_bert_dir, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    CrossEncoder(tiny_bert_dir).tokenizer.save_pretrained(tmp_path / "clf")
    model = CrossEncoder(tmp_path / "clf")
    assert model.num_labels == 2
    assert isinstance(model.activation_fn, torch.nn.Identity)
    assert model.predict(PAIRS).shape == (3, 2)


def test_pickle_weights_need_explicit_permission(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "m")
    weights = load_file(tmp_path / "m" / "model.safetensors")
    torch.save(weights, tmp_path / "m" / "pytorch_model.bin")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="allow_pickle"):
        CrossEncoder(tmp_path / "m")
    loaded = CrossEncoder(tmp_path / "m", allow_pickle=True)
    np.testing.assert_allclose(loaded.predict(PAIRS), tiny_model.predict(PAIRS), atol=1e-6)


def test_missing_files_and_truncated_weights_are_clear_errors(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="config.json"):
        CrossEncoder(tmp_path)
    tiny_model.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError):
        CrossEncoder(tmp_path / "m")


def test_untrained_save_keeps_the_loaded_card(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "a")
    (tmp_path / "a" / "README.md").write_text("# my card\n")
    CrossEncoder(tmp_path / "a").save(tmp_path / "b")
    assert (tmp_path / "b" / "README.md").read_text() == "# my card\n"


def test_base_model_card_is_not_carried_over(tiny_bert_copy: Path, tmp_path: Path) -> None:
    (tiny_bert_copy / "README.md").write_text("# a bi-encoder card\n")
    CrossEncoder(tiny_bert_copy).save(tmp_path / "m")
    assert not (tmp_path / "m" / "README.md").exists()


def test_safetensors_keys_match_a_standard_classifier(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "m")
    keys = set(load_file(tmp_path / "m" / "model.safetensors"))
    assert "classifier.weight" in keys and any(k.startswith("bert.") for k in keys)


def test_tiny_tokenizer_knows_its_words(tiny_model: CrossEncoder) -> None:
    """Guards the fixture itself: a vocabulary that maps everything to [UNK] would make every test vacuous."""
    assert tiny_model.tokenizer.tokenize("paris is the capital of france") == [
        "paris",
        "is",
        "the",
        "capital",
        "of",
        "france",
    ]


def test_a_crash_while_saving_leaves_the_previous_model_intact(
    tiny_model: CrossEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    tiny_model.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise KeyboardInterrupt("killed mid-write")

    with torch.no_grad():
        tiny_model.model.classifier.weight.add_(1.0)  # the new save would differ
    monkeypatch.setattr(tiny_model.tokenizer, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        tiny_model.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written staging folder left behind


def test_a_loaded_model_scores_alike_from_several_threads(tiny_model: CrossEncoder) -> None:
    """Servers (MLflow's scoring server, ``serve-model --workers``) call one model's predict from several threads."""
    assert not tiny_model.training  # loaded for inference: no dropout, and predict never switches modes
    pairs = [("paris france", "berlin germany"), ("cat dog animal", "the dog runs"), ("red blue", "music song book")]
    expected = [float(tiny_model.predict(pair)) for pair in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = list(pool.map(lambda i: float(tiny_model.predict(pairs[i % 3])), range(300)))
    assert scores == pytest.approx([expected[i % 3] for i in range(300)], abs=1e-6)


def test_predict_in_training_mode_scores_without_dropout_and_keeps_the_mode(tiny_model: CrossEncoder) -> None:
    pair = ("paris france", "berlin germany")
    expected = float(tiny_model.predict(pair))
    tiny_model.train()
    assert [float(tiny_model.predict(pair)) for _ in range(3)] == pytest.approx([expected] * 3, abs=1e-6)
    assert tiny_model.training
