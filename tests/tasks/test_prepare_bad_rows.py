"""`prepare.on_bad_rows`: malformed source rows are listed with file and line (fail) or dropped and counted (skip)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rerank_lib.errors import ConfigError, DataValidationError
from tasks.catalog import read_prepared
from tasks.config import PrepareConfig, load_params
from tasks.prepare import run_prepare

ROOT = Path(__file__).resolve().parents[2]

# Lines 3-7 are malformed, each in a different way; lines 2 and 8 are good.
MALFORMED = (
    "q\td\tl\n"
    "what is a cat\ta cat is an animal\t1\n"
    "what is a dog\ta dog\t1\textra field\n"  # 3: four fields
    " \tan empty question\t0\n"  # 4: blank query
    "where is paris\tparis is in france\thigh\n"  # 5: label is not a number
    "where is rome\trome is in italy\tnan\n"  # 6: NaN label
    "what is a car\t\t0\n"  # 7: missing document
    "what is a bus\ta bus is big\t0\n"
)
BAD_LINES = [3, 4, 5, 6, 7]


def pairs_entry(path: str) -> dict:
    return {
        "source": {"kind": "file", "path": path, "split": "train"},
        "columns": {"query": "q", "document": "d", "label": "l"},
        "format": "pairs",
    }


def prepare_config(on_bad_rows: str, **datasets: dict) -> PrepareConfig:
    return PrepareConfig.model_validate({"datasets": datasets, "on_bad_rows": on_bad_rows})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root with a clean and a malformed source, and one dataset prepared by an earlier run."""
    raw = tmp_path / "data" / "raw" / "toy"
    raw.mkdir(parents=True)
    (raw / "clean.tsv").write_text("q\td\tl\nwhat is a cat\ta cat is an animal\t1\nwhat is a dog\ta dog\t0\n")
    (raw / "pairs.tsv").write_text(MALFORMED)
    earlier = tmp_path / "data" / "prepared" / "clean"
    earlier.mkdir(parents=True)
    (earlier / "manifest.json").write_text('{"from": "an earlier run"}')
    return tmp_path


def test_params_yaml_sets_fail_by_default() -> None:
    assert load_params(ROOT / "params.yaml").prepare.on_bad_rows == "fail"
    assert PrepareConfig.model_validate({"datasets": {}}).on_bad_rows == "fail"


def test_unknown_policy_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'prepare.on_bad_rows'.*'fail' or 'skip'.*'drop'"):
        load_params(ROOT / "params.yaml", overrides={"prepare": {"on_bad_rows": "drop"}})


def test_fail_lists_every_bad_line_before_anything_is_built_or_written(project: Path) -> None:
    # The clean dataset comes first in the catalog: it must not be rebuilt when a later source is malformed.
    cfg = prepare_config("fail", clean=pairs_entry("data/raw/toy/clean.tsv"), toy=pairs_entry("data/raw/toy/pairs.tsv"))
    out = project / "data" / "prepared"
    with pytest.raises(DataValidationError) as caught:
        run_prepare(cfg, project, out)
    message = str(caught.value)
    assert message.startswith(f"dataset 'toy' ({project / 'data/raw/toy/pairs.tsv'}): 5 malformed rows:")
    for line, reason in zip(
        BAD_LINES,
        [
            "4 fields, expected 3",
            "column 'q': empty text",
            "column 'l': label 'high' is not a number",
            "column 'l': label 'nan' is not a finite number",
            "column 'd': empty text",
        ],
        strict=True,
    ):
        assert f"  line {line}: {reason}\n" in message
    assert "line 2:" not in message and "line 8:" not in message
    assert "prepare.on_bad_rows: skip" in message and "extra_fields: drop" in message
    assert sorted(p.name for p in out.iterdir()) == ["clean"]
    assert json.loads((out / "clean" / "manifest.json").read_text()) == {"from": "an earlier run"}


def test_fail_lists_the_first_ten_of_many(tmp_path: Path) -> None:
    lines = ["q\td\tl"] + [f"question {i}\tdocument {i}\t{'x' if i % 2 else 1}" for i in range(30)]
    (tmp_path / "many.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match="15 malformed rows; the first 10:") as caught:
        run_prepare(prepare_config("fail", many=pairs_entry("many.tsv")), tmp_path, tmp_path / "out")
    listed = [line for line in str(caught.value).splitlines() if line.startswith("  line ")]
    assert listed == [f"  line {n}: column 'l': label 'x' is not a number" for n in range(3, 23, 2)]
    assert not (tmp_path / "out").exists()


def test_skip_drops_bad_rows_logs_their_lines_and_counts_them_in_the_manifest(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = prepare_config("skip", toy=pairs_entry("data/raw/toy/pairs.tsv"))
    with caplog.at_level(logging.WARNING, logger="tasks.catalog"):
        result = run_prepare(cfg, project, project / "data" / "prepared")
    folder = project / "data" / "prepared" / "toy"
    assert read_prepared(folder, "train")["query"].tolist() == ["what is a cat", "what is a bus"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == result.manifests["toy"]
    assert manifest["skipped_rows"] == 5 and manifest["rows"] == 2
    assert manifest["read"]["train"]["rows_read"] == 7
    assert manifest["read"]["train"]["skipped_lines"] == [f"data/raw/toy/pairs.tsv:{n}" for n in BAD_LINES]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "5 malformed rows" in warning.getMessage() and "pairs.tsv" in warning.getMessage()
    assert all(f"line {n}:" in warning.getMessage() for n in BAD_LINES)


def test_skip_records_zero_for_a_clean_source_and_fail_adds_nothing(project: Path) -> None:
    clean = pairs_entry("data/raw/toy/clean.tsv")
    skipped = run_prepare(prepare_config("skip", clean=clean), project, project / "skip").manifests["clean"]
    strict = run_prepare(prepare_config("fail", clean=clean), project, project / "fail").manifests["clean"]
    assert skipped["skipped_rows"] == 0
    assert "skipped_rows" not in strict and "skipped_rows" not in strict["read"]["train"]


def test_skip_still_fails_when_no_row_is_left(tmp_path: Path) -> None:
    (tmp_path / "bad.tsv").write_text("q\td\tl\na\tb\tyes\nc\td\tno\n")
    with pytest.raises(DataValidationError, match=r"(?s)2 malformed rows.*Every row is malformed"):
        run_prepare(prepare_config("skip", bad=pairs_entry("bad.tsv")), tmp_path, tmp_path / "out")


def _jsonl_fail_and_skip(tmp_path: Path, lines: str) -> tuple[list[str], dict]:
    """A pairs.jsonl prepared twice: the bad lines ``fail`` lists, and the manifest ``skip`` writes."""
    (tmp_path / "pairs.jsonl").write_text(lines)
    entry = {**pairs_entry("pairs.jsonl"), "source": {"kind": "file", "path": "pairs.jsonl", "split": "train"}}
    with pytest.raises(DataValidationError) as caught:
        run_prepare(prepare_config("fail", toy=entry), tmp_path, tmp_path / "out")
    listed = [line for line in str(caught.value).splitlines() if line.startswith("  line ")]
    manifest = run_prepare(prepare_config("skip", toy=entry), tmp_path, tmp_path / "out").manifests["toy"]
    return listed, manifest


def test_jsonl_lines_that_are_not_objects_or_lack_a_text(tmp_path: Path) -> None:
    listed, manifest = _jsonl_fail_and_skip(
        tmp_path,
        '{"q": "what is a cat", "d": "an animal", "l": 1}\n'
        "{not json\n"
        "\n"
        '["a", "list"]\n'
        '{"q": "what is a dog", "l": 0}\n'
        '{"q": "what is a bus", "d": "a vehicle", "l": 0}\n',
    )
    assert listed == [
        "  line 2: invalid JSON (Expecting property name enclosed in double quotes)",
        "  line 4: expected a JSON object, got list",
        "  line 5: column 'd': missing text",
    ]
    assert manifest["skipped_rows"] == 3 and manifest["rows"] == 2


def test_a_list_as_a_query_or_a_pair_document_is_a_bad_row_named_by_line(tmp_path: Path) -> None:
    listed, manifest = _jsonl_fail_and_skip(
        tmp_path,
        '{"q": ["what", "is"], "d": "an animal", "l": 0}\n'
        '{"q": "what is a cat", "d": "an animal", "l": 1}\n'
        '{"q": "what is a dog", "d": ["a", "list"], "l": 0}\n',
    )
    assert listed == [
        "  line 1: column 'q': expected a text, got a list",
        "  line 3: column 'd': expected a text, got a list",
    ]
    assert manifest["skipped_rows"] == 2 and manifest["rows"] == 1


def test_empty_texts_inside_list_cells_are_malformed_rows(tmp_path: Path) -> None:
    rows = [
        {"query": "what is a cat", "positive": ["a cat is an animal"], "negative": ["a car", "a bus"]},
        {"query": "what is a dog", "positive": ["a dog barks", ""], "negative": ["a tree"]},  # line 2
        {"query": "what is a bus", "positive": ["a bus is big"], "negative": ["  ", "a tree"]},  # line 3
        {"query": "what is a car", "positive": ["a car drives"], "negative": [None]},  # line 4
    ]
    (tmp_path / "lists.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    entry = {"source": {"kind": "file", "path": "lists.jsonl", "split": "test"}, "format": "reranking"}
    with pytest.raises(DataValidationError) as caught:
        run_prepare(prepare_config("fail", lists=entry), tmp_path, tmp_path / "out")
    message = str(caught.value)
    assert "3 malformed rows" in message
    assert "line 2: column 'positive': list item 1: empty text" in message
    assert "line 3: column 'negative': list item 0: empty text" in message
    assert "line 4: column 'negative': list item 0: missing text" in message
    manifest = run_prepare(prepare_config("skip", lists=entry), tmp_path, tmp_path / "out").manifests["lists"]
    assert manifest["skipped_rows"] == 3
    assert read_prepared(tmp_path / "out" / "lists", "test")["query"].tolist() == ["what is a cat"]
