"""Property tests of `rerank predict`: whatever the input lines or the damage to the model folder, the command
gives the right scores or one `error:` line with exit 2 — never a traceback, never wrong scores with exit 0.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_app.cli import main
from rerank_lib import CrossEncoder, load_reranker
from rerank_lib.fusion import PRIOR_FOLDER, attach_score_fusion

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=5,
)
GOOD_PAIR = st.fixed_dictionaries({"query": st.sampled_from(["the cat", "what is paris"]), "passage": TEXT})
LINES = st.one_of(
    GOOD_PAIR.map(json.dumps),
    st.fixed_dictionaries({"query": JSON_VALUES, "passage": JSON_VALUES}).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    TEXT,
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def expected_pair(line: str) -> tuple[str, str] | None:
    """The pair a line holds under the documented contract, None for a malformed line."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    values = [row.get(field) for field in ("query", "passage")]
    if not all(isinstance(value, str) and value.strip() for value in values):
        return None
    return values[0], values[1]


def run_predict(model: Path, pairs_file: Path, output: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    output.unlink(missing_ok=True)
    code = main(["predict", "--model", str(model), "--input", str(pairs_file), "--output", str(output)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture(scope="module")
def fused_model(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fused") / "model"
    CrossEncoder(tiny_bert_dir, num_labels=1, device="cpu").save_pretrained(folder)
    attach_score_fusion(folder, tiny_bert_dir, 0.4)
    return folder


@SETTINGS
@given(lines=st.lists(LINES, min_size=1, max_size=6))
def test_any_input_lines_give_their_scores_or_name_the_first_bad_line(
    lines: list[str], fused_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, err = run_predict(fused_model, pairs_file, tmp_path / "scores.jsonl", capsys)
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    bad = [number for number, line in numbered if expected_pair(line) is None]
    if bad:
        assert code == 2
        assert f"{pairs_file}, line {bad[0]}:" in err.strip().splitlines()[-1]
        return
    assert code == 0, err
    pairs = [expected_pair(line) for _, line in numbered]
    rows = [json.loads(row) for row in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [(row["query"], row["passage"]) for row in rows] == pairs
    expected = load_reranker(fused_model).predict(pairs) if pairs else []
    np.testing.assert_allclose([row["score"] for row in rows], expected, atol=1e-5)


def damage(path: Path, kind: str, cut: float, noise: bytes) -> None:
    size = path.stat().st_size
    if kind == "missing":
        path.unlink()
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[: int(size * cut)])
    else:  # the whole file replaced by bytes of the same length
        path.write_bytes((noise * (size // max(len(noise), 1) + 1))[:size])


def damageable_files(model: Path) -> list[str]:
    return sorted(str(p.relative_to(model)) for p in model.rglob("*") if p.is_file())


@SETTINGS
@given(
    choice=st.integers(min_value=0, max_value=10_000),
    kind=st.sampled_from(["missing", "truncated", "garbage"]),
    cut=st.floats(min_value=0.0, max_value=0.95),
    noise=st.binary(min_size=1, max_size=64),
)
def test_a_damaged_model_folder_fails_clearly_or_scores_exactly_as_before(
    choice: int, kind: str, cut: float, noise: bytes, fused_model: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    files = damageable_files(fused_model)
    assert any(name.startswith(f"{PRIOR_FOLDER}{os.sep}") for name in files)  # the prior is damaged in turn too
    name = files[choice % len(files)]
    model = tmp_path / "model"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(fused_model, model)
    damage(model / name, kind, cut, noise)
    pairs = [("the cat", "the cat sleeps in the car"), ("what is paris", "paris is the capital of france")]
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps({"query": q, "passage": p}) + "\n" for q, p in pairs))
    code, err = run_predict(model, pairs_file, tmp_path / "scores.jsonl", capsys)
    if code != 0:
        assert code == 2 and err.strip().splitlines()[-1].startswith("error: "), (name, kind, err[-2000:])
        return
    scores = [json.loads(row)["score"] for row in (tmp_path / "scores.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(scores, load_reranker(fused_model).predict(pairs), atol=1e-5, err_msg=f"{name} {kind}")
