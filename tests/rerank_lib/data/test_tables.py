"""The generic file reader: formats, globs, quirks as options, and errors naming dataset, file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rerank_lib.data import TableOptions, read_table
from rerank_lib.data.tables import BadRow, describe_bad_rows, read_source, select_columns
from rerank_lib.errors import DataValidationError


def test_glob_reads_files_in_name_order(tmp_path: Path) -> None:
    for index in (2, 1):
        (tmp_path / f"part-{index}.csv").write_text(f"q,d,label\nq{index},d{index},1\n")
    table = read_table(tmp_path / "part-*.csv")
    assert table["q"].tolist() == ["q1", "q2"]
    assert [Path(f).name for f in table.attrs["files"]] == ["part-1.csv", "part-2.csv"]


def test_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [{"query": "q", "documents": ["a", "b"], "labels": [1, 0]}]
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_table(tmp_path / "x.jsonl").iloc[0]["documents"] == ["a", "b"]
    pd.DataFrame(rows).to_parquet(tmp_path / "x.parquet")
    assert list(read_table(tmp_path / "x.parquet").iloc[0]["labels"]) == [1, 0]


def test_extra_fields_are_an_error_unless_dropped(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("1\ta\tb\n2\tc\td\textra\n")
    options = TableOptions(header=False, names=("id", "a", "b"))
    with pytest.raises(
        DataValidationError, match=r"(?s)dataset 'toy' \(.*x.tsv\), line 2: 4 fields, expected 3.*extra_fields: drop"
    ):
        read_table(path, options, dataset="toy")
    dropped = read_table(path, TableOptions(header=False, names=("id", "a", "b"), extra_fields="drop"))
    assert dropped["b"].tolist() == ["b", "d"] and dropped.attrs["extra_field_lines"] == 1


def test_quoting_none_keeps_quotes_and_row_count_guard(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text('a\tb\n"x\ty\n"z\tw\n')
    assert read_table(path, TableOptions(quoting="none"))["a"].tolist() == ['"x', '"z']
    with pytest.raises(DataValidationError, match="read 1 rows, expected 2"):
        read_table(path, TableOptions(quoting="minimal"), expected_rows=2)


def test_missing_file_glob_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"dataset 'toy'.*does not exist.*dvc pull"):
        read_table(tmp_path / "absent.csv", dataset="toy")
    with pytest.raises(DataValidationError, match="no file matches"):
        read_table(tmp_path / "*.csv", dataset="toy")
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataValidationError, match=r"x.jsonl\), line 2: invalid JSON"):
        read_table(tmp_path / "x.jsonl", dataset="toy")
    (tmp_path / "x.bin").write_text("")
    with pytest.raises(DataValidationError, match="set `format`"):
        read_table(tmp_path / "x.bin")


def test_select_columns_names_missing_source_column() -> None:
    frame = pd.DataFrame({"Question": ["q"], "Sentence": ["s"]})
    with pytest.raises(DataValidationError, match=r"dataset 'toy' \(f.tsv\): missing column\(s\) \['Label'\]"):
        select_columns(frame, {"query": "Question", "label": "Label"}, dataset="toy", source="f.tsv")


def test_read_source_sets_malformed_rows_aside_with_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    # Line 3 opens a quoted field that ends on line 4, so the short row after it starts on line 5, not line 4.
    path.write_text('q,d,label\nq1,d1,1\nq2,"two\nlines",0\nq3,1\n\nq4,d4,1,extra\nq5,d5,0\n')
    source = read_source(path, dataset="toy", expected_rows=5)
    assert source.frame["q"].tolist() == ["q1", "q2", "q5"] and source.frame["d"][1] == "two\nlines"
    assert [line for _, line in source.origins] == [2, 3, 8]
    assert [(row.line, row.reason) for row in source.bad_rows] == [
        (5, "2 fields, expected 3"),
        (7, "4 fields, expected 3"),
    ]
    with pytest.raises(DataValidationError, match=r"(?s)\(.*x.csv\): 2 malformed rows:\n  line 5: .*\n  line 7: "):
        read_table(path, dataset="toy")


def test_describe_bad_rows_names_each_file_of_a_glob() -> None:
    rows = [BadRow("a.tsv", 3, "empty text"), BadRow("b.tsv", 9, "missing label")]
    assert describe_bad_rows(rows, "toy") == (
        "dataset 'toy': 2 malformed rows in 2 files:\n  a.tsv, line 3: empty text\n  b.tsv, line 9: missing label"
    )


def test_bom_duplicate_headers_and_header_only_files_read_like_pandas(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("\ufeffq,d,d\nq1,d1,d2\n", encoding="utf-8")
    assert list(read_table(path).columns) == list(pd.read_csv(path, dtype=str).columns) == ["q", "d", "d.1"]
    path.write_text("q,d\n")
    assert list(read_table(path).columns) == ["q", "d"] and len(read_table(path)) == 0
    path.write_text("")
    with pytest.raises(DataValidationError, match="the file is empty"):
        read_table(path, dataset="toy")
