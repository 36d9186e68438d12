"""Property-based tests: random malformed source rows through `prepare`, random malformed params through loading.

The only outcomes allowed are success or the project's own error types (``RerankError``: ``DataValidationError``,
``ConfigError``); a raw ``KeyError``, ``TypeError`` or parser error escaping would fail these tests.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rerank_lib.errors import ConfigError, DataValidationError, RerankError
from tasks.config import PrepareConfig, load_params, parse_set_overrides
from tasks.prepare import run_prepare

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----- malformed rows through preparation -----

words = st.text(alphabet="abcxyz éü'\"0-", min_size=1, max_size=8).filter(lambda text: text.strip() != "")
good_rows = st.tuples(words, words, st.sampled_from(["0", "1", "0.5", " 1 "])).map(lambda row: ("good", list(row)))
BAD_KINDS: dict[str, st.SearchStrategy[list[str]]] = {
    "extra field": st.tuples(words, words, st.just("1"), words).map(list),
    "missing field": st.tuples(words, words).map(list),
    "blank query": st.tuples(st.sampled_from(["", " ", "  "]), words, st.just("0")).map(list),
    "blank document": st.tuples(words, st.sampled_from(["", " "]), st.just("1")).map(list),
    "bad label": st.tuples(words, words, st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e999", "yes", "1,0"])).map(
        list
    ),
}
bad_rows = st.sampled_from(sorted(BAD_KINDS)).flatmap(lambda kind: BAD_KINDS[kind].map(lambda row: (kind, row)))


@contextmanager
def project_with(text: str, name: str = "pairs.tsv") -> Iterator[Path]:
    """A throwaway project root holding one source file (hypothesis reruns the test body, so no tmp_path)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / name).write_text(text, encoding="utf-8")
        yield Path(folder)


def prepare_with(policy: str, source: dict[str, Any], fmt: str = "pairs") -> PrepareConfig:
    entry = {"source": source, "columns": {"query": "q", "document": "d", "label": "l"}, "format": fmt}
    return PrepareConfig.model_validate({"datasets": {"toy": entry}, "on_bad_rows": policy})


@SETTINGS
@given(st.lists(st.one_of(good_rows, bad_rows), min_size=1, max_size=25), st.sampled_from(["fail", "skip"]))
def test_malformed_rows_are_reported_by_line_or_skipped_and_counted(rows: list, policy: str) -> None:
    text = "q\td\tl\n" + "".join("\t".join(fields) + "\n" for _, fields in rows)
    bad_lines = [line for line, (kind, _) in enumerate(rows, start=2) if kind != "good"]
    good = len(rows) - len(bad_lines)
    source = {"kind": "file", "path": "pairs.tsv", "split": "train", "quoting": "none"}
    with project_with(text) as root:
        try:
            result = run_prepare(prepare_with(policy, source), root, root / "out")
        except DataValidationError as error:
            message = str(error)
            assert bad_lines, f"clean rows were rejected: {message}"
            assert policy == "fail" or good == 0, f"skip failed with {good} good rows left: {message}"
            listed = [int(line.split()[1].rstrip(":")) for line in message.splitlines() if line.startswith("  line ")]
            assert listed == bad_lines[:10] or (len(bad_lines) == 1 and f"line {bad_lines[0]}:" in message)
            assert not (root / "out").exists()  # nothing written
        else:
            manifest = result.manifests["toy"]
            assert manifest["rows"] == good
            assert manifest.get("skipped_rows") == (len(bad_lines) if policy == "skip" else None)
            assert policy == "skip" or not bad_lines


# Anything a file may hold: quotes, separators, line breaks, control characters, broken JSON.
chaos_lines = st.lists(
    st.one_of(st.text(alphabet=st.characters(codec="utf-8"), max_size=30), st.sampled_from(["q1,d1,1", "q2,d2,0"])),
    max_size=12,
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "q": st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.text(max_size=3), max_size=2)),
        "d": st.one_of(st.none(), st.floats(), st.text(max_size=5), st.booleans()),
        "l": st.one_of(
            st.none(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(), st.text(max_size=4)
        ),
    },
)
LIST_QUERY_JSONL = '{"q": [], "l": 0, "d": "0"}\n{"q": "q1", "d": "d1", "l": 1}'
GOOD_JSON = ['{"q": "q1", "d": "d1", "l": 1}', '{"q": "q1", "d": "d2", "l": 0}']
json_lines = st.lists(st.one_of(RECORD.map(json.dumps), st.text(max_size=20), st.sampled_from(GOOD_JSON)), max_size=10)


@SETTINGS
@given(
    st.one_of(
        st.tuples(chaos_lines.map(lambda lines: "q,d,l\n" + "\n".join(lines)), st.just("pairs.csv")),
        st.tuples(json_lines.map("\n".join), st.just("pairs.jsonl")),
    ),
    st.sampled_from(["none", "minimal"]),
    st.sampled_from(["fail", "skip"]),
    st.sampled_from(["pairs", "listwise", "reranking"]),
)
# Found by this test in CI: a list as the query of one JSON row reached the Parquet writer (pyarrow's ArrowInvalid).
@example(content=(LIST_QUERY_JSONL, "pairs.jsonl"), quoting="none", policy="fail", fmt="pairs")
@example(content=(LIST_QUERY_JSONL, "pairs.jsonl"), quoting="none", policy="skip", fmt="listwise")
def test_arbitrary_file_content_gives_success_or_a_project_error(
    content: tuple[str, str], quoting: str, policy: str, fmt: str
) -> None:
    text, name = content
    source = {"kind": "file", "path": name, "split": "train", "quoting": quoting}
    with project_with(text, name) as root:
        try:
            run_prepare(prepare_with(policy, source, fmt), root, root / "out")
        except RerankError as error:
            assert str(error).strip()
            assert not (root / "out" / "toy").exists()  # a failed build writes nothing


# ----- malformed params through config loading -----

junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(["fail", "skip", "file", "pairs", "../x", "hf_" + "a" * 30, "sqlite:///x.db", "-1"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def node_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the params tree (sections, catalog entries, their options)."""
    paths = []
    if isinstance(node, dict):
        for key, value in node.items():
            paths.append((*prefix, key))
            paths.extend(node_paths(value, (*prefix, key)))
    return paths


PATHS = node_paths(PARAMS)


def mutate(params: dict, path: tuple, action: str, value: Any) -> dict:
    data = copy.deepcopy(params)
    *parents, leaf = path
    node = data
    for key in parents:
        node = node[key]
    if action == "delete":
        del node[leaf]
    elif action == "replace":
        node[leaf] = value
    else:  # a key nobody knows, beside the chosen one
        node[f"{leaf}_unknown" if isinstance(leaf, str) else "unknown"] = value
    return data


mutations = st.lists(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(["delete", "replace", "add"]), junk), min_size=1, max_size=3
)


def apply_all(steps: list) -> dict:
    data = PARAMS
    for path, action, value in steps:
        try:
            data = mutate(data, path, action, value)
        except (KeyError, TypeError):  # an earlier step removed or replaced this path's parent
            continue
    return data


def loads_or_config_error(load: Callable[[], Any]) -> None:
    try:
        load()
    except ConfigError as error:
        assert str(error).strip()


@SETTINGS
@given(mutations)
def test_malformed_params_files_load_or_fail_with_a_config_error(steps: list) -> None:
    data = apply_all(steps)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "params.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        loads_or_config_error(lambda: load_params(path))


@st.composite
def overrides(draw: st.DrawFn) -> dict:
    """A per-run override dict (as flows and ``--set`` pass them): junk at one to three real key paths."""
    out: dict = {}
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        *parents, leaf = draw(st.sampled_from(PATHS))
        node = out
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[leaf] = draw(junk)
    return out


@SETTINGS
@given(overrides())
def test_malformed_overrides_load_or_fail_with_a_config_error(override: dict) -> None:
    loads_or_config_error(lambda: load_params(ROOT / "params.yaml", overrides=override))


assignment = st.tuples(
    st.lists(st.sampled_from(["train", "epochs", "prepare", "skip", "", "a"]), min_size=0, max_size=4).map(".".join),
    st.sampled_from(["=", "", "=="]),
    st.one_of(st.text(max_size=8), st.sampled_from(["1e-4", "[1, 2]", "{a: 1}", "null", ".nan", "{"])),
).map("".join)


@SETTINGS
@given(st.lists(assignment, max_size=4))
@example(["train.epochs=1", "train.epochs.x=2"])  # found by this test: a raw TypeError
@example(["train.train=="])  # found by this test: a raw yaml ConstructorError
def test_set_overrides_parse_or_fail_with_a_config_error(assignments: list[str]) -> None:
    def load() -> None:
        load_params(ROOT / "params.yaml", overrides=parse_set_overrides(assignments))

    loads_or_config_error(load)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_params_text_loads_or_fails_with_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "params.yaml"
        path.write_text(text, encoding="utf-8")
        loads_or_config_error(lambda: load_params(path))


def test_a_nan_learning_rate_is_named() -> None:
    """One malformed value spelled out, so the properties above are known to reach validation."""
    data = mutate(PARAMS, ("train", "learning_rate"), "replace", math.nan)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "params.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        try:
            load_params(path)
        except ConfigError as error:
            assert "'train.learning_rate'" in str(error)
        else:
            raise AssertionError("a NaN learning rate was accepted")
