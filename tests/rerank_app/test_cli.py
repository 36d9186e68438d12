"""The `rerank` CLI: help for every command, predict from JSONL, params with --set, promote and rollback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from rerank_app.cli import main
from rerank_lib import CrossEncoder
from tasks.promote import DATA_HASH_TAG, METRIC_TAG, SCORE_TAG

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["run", "stage", "params", "tune", "predict", "evaluate", "promote", "rollback", "serve"]


def test_every_command_has_help(capsys: pytest.CaptureFixture) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rerank_app.cli", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: rerank {command}" in capsys.readouterr().out


def test_params_applies_set_overrides(capsys: pytest.CaptureFixture) -> None:
    assert main(["--root", str(ROOT), "--set", "train.epochs=3", "params"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["epochs"] == 3
    assert main(["--root", str(ROOT), "--set", "train.nope=1", "params"]) == 2
    assert "unknown key 'train.nope'" in capsys.readouterr().err


def test_set_from_applies_a_values_file_under_the_set_overrides(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = tmp_path / "best.yaml"
    values.write_text("# a tune result\ntrain:\n  epochs: 1.4\n  learning_rate: 6.0e-05\n")
    assert main(["--root", str(ROOT), "--set-from", str(values), "--set", "train.epochs=2", "params"]) == 0
    train = yaml.safe_load(capsys.readouterr().out)["train"]
    assert (train["epochs"], train["learning_rate"]) == (2, 6e-05)  # --set wins over the file
    assert main(["--root", str(ROOT), "--set-from", str(tmp_path / "none.yaml"), "params"]) == 2
    error = capsys.readouterr().err
    assert "--set-from file" in error and "does not exist" in error
    values.write_text("replace: [train.datasets]\ntrain: {datasets: {}}\n")
    assert main(["--root", str(ROOT), "--set-from", str(values), "params"]) == 2
    assert "'replace' belongs in a profile" in capsys.readouterr().err
    values.write_text("train: {epochs: -1}\n")
    assert main(["--root", str(ROOT), "--set-from", str(values), "params"]) == 2
    assert f"'train.epochs': Input should be greater than 0 (got -1) in {values}" in capsys.readouterr().err
    values.write_text("train: {epochs: 2}\n")
    assert main(["--root", str(ROOT), "--set-from", str(values), "dvc-yaml"]) == 2
    assert "cannot repeat --set/--replace/--set-from values" in capsys.readouterr().err


def test_predict_scores_jsonl(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "model")
    pairs = [{"query": "what is the capital of france", "passage": "paris"}, {"query": "a cat", "passage": "a dog"}]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    code = main(
        ["--root", str(ROOT), "predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "pairs.jsonl"),
         "--output", str(tmp_path / "scores.jsonl")]
    )  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    expected = tiny_model.predict([(p["query"], p["passage"]) for p in pairs])
    assert [row["score"] for row in rows] == pytest.approx(expected.tolist(), abs=1e-6)


def test_predict_scores_a_package_with_the_first_stage_scores_given(
    tiny_model: CrossEncoder, tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rerank_lib import load_reranker
    from rerank_lib.package import PackageSpec, write_package

    tiny_model.save(tmp_path / "ce")
    package = write_package(tmp_path / "pkg", tmp_path / "ce", PackageSpec(0.5), tiny_bert_dir)
    rows = [{"query": "a cat", "passage": text, "first_stage_score": s} for text, s in (("a dog", 3.0), ("a car", 9))]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    def predict(model: Path) -> int:
        return main(["--root", str(ROOT), "predict", "--model", str(model), "--input", str(tmp_path / "pairs.jsonl"),
                     "--output", str(tmp_path / "scores.jsonl")])  # fmt: skip

    assert predict(package) == 0
    scores = [json.loads(line)["score"] for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    pairs = [(row["query"], row["passage"]) for row in rows]
    assert scores == pytest.approx(load_reranker(package).predict(pairs, first_stage_scores=[3.0, 9.0]).tolist())
    assert predict(tmp_path / "ce") == 2  # a plain cross-encoder would drop the scores silently
    assert "is not a package: nothing would use it" in capsys.readouterr().err
    (tmp_path / "pairs.jsonl").write_text(
        json.dumps(rows[0]) + "\n" + json.dumps({"query": "a", "passage": "b"}) + "\n"
    )
    assert predict(package) == 2
    assert "'first_stage_score' is on 1 of 2 lines; give it on all or none" in capsys.readouterr().err


def test_predict_with_the_int8_onnx_backend(tiny_model: CrossEncoder, tmp_path: Path) -> None:
    tiny_model.save(tmp_path / "model")
    pairs = [{"query": "what is the capital of france", "passage": "paris"}, {"query": "a cat", "passage": "a dog"}]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    code = main(
        ["predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "pairs.jsonl"),
         "--output", str(tmp_path / "scores.jsonl"), "--backend", "onnx", "--quantize", "int8"]
    )  # fmt: skip
    assert code == 0
    assert (tmp_path / "model" / "onnx" / "model_qint8.onnx").is_file()
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    expected = tiny_model.predict([(p["query"], p["passage"]) for p in pairs])
    assert [row["score"] for row in rows] == pytest.approx(expected.tolist(), abs=0.05)


def test_predict_rejects_int8_without_onnx(tiny_model: CrossEncoder, tmp_path: Path, capsys) -> None:
    tiny_model.save(tmp_path / "model")
    (tmp_path / "pairs.jsonl").write_text('{"query": "q", "passage": "p"}\n')
    code = main(["predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "pairs.jsonl"),
                 "--quantize", "int8"])  # fmt: skip
    assert code == 2
    assert "needs backend='onnx'" in capsys.readouterr().err
    assert not (tmp_path / "model" / "onnx").exists()


def test_predict_bad_line_is_named(tiny_model: CrossEncoder, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tiny_model.save(tmp_path / "model")
    (tmp_path / "pairs.jsonl").write_text('{"query": "q", "passage": "p"}\n{"query": "q"}\n')
    code = main(["predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "pairs.jsonl")])
    assert code == 2
    assert "line 2" in capsys.readouterr().err


def test_promote_and_rollback_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    client.create_registered_model("wikiqa-reranker")
    for score in (0.5, 0.4):
        version = client.create_model_version("wikiqa-reranker", source="file:///tmp/m").version
        for key, value in {SCORE_TAG: str(score), DATA_HASH_TAG: "h", METRIC_TAG: "m"}.items():
            client.set_model_version_tag("wikiqa-reranker", version, key, value)
    common = ["--root", str(ROOT), "--set", f"tracking.tracking_uri={uri}"]
    assert main([*common, "promote", "--version", "1"]) == 0
    assert main([*common, "promote", "--version", "2"]) == 0
    assert str(client.get_model_version_by_alias("wikiqa-reranker", "champion").version) == "2"
    assert main([*common, "rollback"]) == 0
    assert "version 1" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("wikiqa-reranker", "champion").version) == "1"
    assert main([*common, "promote", "--version", "7"]) == 2
