"""The dataset catalog: the docstring's example parses and builds on the real team data; bad entries fail early."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import tasks.catalog as catalog
from rerank_lib.bi_encoder import BiEncoderScorer
from rerank_lib.data import TableOptions, read_table
from rerank_lib.errors import ConfigError, DataValidationError
from rerank_lib.retrieval import HybridScorer
from tasks.io import file_md5

ROOT = Path(__file__).resolve().parents[2]


# The entries of params.yaml's catalog that need no model (no teacher): each kind of source and format.
EXAMPLES = ("wikiqa-train", "wikiqa-test", "scifact-train", "stsbenchmark", "sick", "trec-dl19")


def example_catalog() -> dict:
    datasets = yaml.safe_load((ROOT / "params.yaml").read_text())["prepare"]["datasets"]
    return {name: datasets[name] for name in EXAMPLES}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[catalog.PreparedDataset, dict, Path]]:
    """Every example entry built from data/raw and written out once for the tests below."""
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("prepared")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RERANK_LIB_CACHE", str(cache))
        entries = catalog.parse_catalog(example_catalog())
        result = {}
        for name, entry in entries.items():
            prepared = catalog.build_dataset(name, entry, ROOT)
            manifest = catalog.write_prepared(prepared, out / name)
            result[name] = (prepared, manifest, out / name)
    return result


def test_example_catalog_covers_the_five_team_datasets() -> None:
    entries = catalog.parse_catalog(example_catalog())
    assert set(entries) == {"wikiqa-train", "wikiqa-test", "scifact-train", "stsbenchmark", "sick", "trec-dl19"}
    assert entries["scifact-train"].mining is not None and entries["sick"].split is not None


def test_wikiqa_entries(built: dict) -> None:
    train, manifest, folder = built["wikiqa-train"]
    assert manifest["splits"] == {"train": {"file": "train.parquet", "rows": 20347}}
    assert manifest["columns"] == ["query", "document", "label"] and manifest["format"] == "pairs"
    assert train.splits["train"]["label"].value_counts().to_dict() == {0.0: 19308, 1.0: 1039}
    assert manifest["validation"]["train"]["queries without any positive"] == 1245
    test, manifest, _ = built["wikiqa-test"]
    assert manifest["splits"]["test"]["rows"] == 237 and manifest["read"]["test"]["rows_read"] == 6165
    samples = catalog.read_prepared(built["wikiqa-test"][2], "test")
    assert list(samples.columns) == ["query", "positive", "negative"] and isinstance(samples.iloc[0]["positive"], list)
    rows = read_table(ROOT / "data/raw/wikiqa/WikiQA-test.tsv", TableOptions(quoting="none"))
    label = dict(zip(zip(rows["Question"], rows["Sentence"], strict=True), rows["Label"], strict=True))
    for sample in samples.to_dict("records"):  # each question's right and wrong sentences, as the file labels them
        assert {label[sample["query"], text] for text in sample["positive"]} == {"1"}
        assert {label[sample["query"], text] for text in sample["negative"]} == {"0"}


def test_scifact_mined_ntuples_exclude_every_known_positive(built: dict) -> None:
    from rerank_lib.data import read_beir_judgments

    prepared, manifest, _ = built["scifact-train"]
    table = prepared.splits["train"]
    assert list(table.columns) == ["query", "positive", "negative_1", "negative_2", "negative_3", "negative_4"]
    assert 500 < len(table) <= 564 and manifest["mining"]["train"]["corpus"] == 5183
    judged = read_beir_judgments(ROOT / "data/raw/scifact", "train")
    positives = judged.groupby("query")["document"].apply(set).to_dict()
    for row in table.itertuples(index=False):
        assert not {row.negative_1, row.negative_2, row.negative_3, row.negative_4} & positives[row.query]


def test_sts_and_sick_scores_normalised_and_split(built: dict) -> None:
    sts, manifest, _ = built["stsbenchmark"]
    assert {split: len(table) for split, table in sts.splits.items()} == {"train": 5749, "dev": 1500, "test": 1379}
    assert all(table["label"].between(0, 1).all() for table in sts.splits.values())
    assert manifest["read"]["test"]["extra_field_lines"] == 284
    sick, manifest, _ = built["sick"]
    assert manifest["rows"] == 9927 and {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": 8074,
        "dev": 985,
        "test": 868,
    }
    assert sick.splits["train"]["label"].min() == 0.0 and sick.splits["train"]["label"].max() == 1.0
    assert not set(sick.splits["train"]["query"]) & set(sick.splits["test"]["query"])


def test_trec_dl19_graded_lists(built: dict) -> None:
    prepared, manifest, _ = built["trec-dl19"]
    lists = prepared.splits["test"]
    assert len(lists) == 43 and sum(map(len, lists["documents"])) == 4102
    assert {grade for labels in lists["labels"] for grade in labels} == {1.0, 2.0, 3.0}


def test_manifest_records_source_hashes_outputs_and_entry(built: dict) -> None:
    _, manifest, folder = built["sick"]
    assert manifest["inputs"] == {"data/raw/sick/SICK.txt": file_md5(ROOT / "data/raw/sick/SICK.txt")}
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["outputs"] == {
        name: file_md5(folder / name) for name in ("train.parquet", "dev.parquet", "test.parquet")
    }
    assert on_disk["entry"]["split"]["seed"] == 42 and on_disk["source"]["kind"] == "file"
    beir_inputs = built["trec-dl19"][1]["inputs"]
    assert set(beir_inputs) == {
        "data/raw/msmarco-trec-dl19/corpus.jsonl",
        "data/raw/msmarco-trec-dl19/queries.jsonl",
        "data/raw/msmarco-trec-dl19/qrels/test.tsv",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"source": {"kind": "file", "path": "x.tsv", "quote": "none"}},
            r"unknown key 'datasets.toy.source.file.quote'",
        ),
        ({"source": {"kind": "ftp", "path": "x"}}, r"'datasets.toy.source'.*kind"),
        ({"format": "quads"}, r"'datasets.toy.format'"),
        ({"columns": {"question": "Question"}}, r"'datasets.toy.columns'.*unknown column role"),
        ({"format": "reranking", "mining": {}}, r"mining produces pairs, triplets"),
        ({"mining": {"method": "bi-encoder"}}, r"needs `model`"),
        ({"mining": {"margin": 1.5, "margin_type": "relative"}}, r"relative margin must be below 1"),
        ({"mining": {"range_min": 9, "range_max": 3}}, r"range_min \(9\) must be below range_max"),
        ({"split": {"fractions": {"train": 0.9, "test": 0.2}}}, r"'datasets.toy.split.fractions'.*sum to 1"),
        ({"validation": {"loss": "FocalLoss"}}, r"unknown loss 'FocalLoss'"),
        ({"labels": {"scale": [5, 0]}}, r"'datasets.toy.labels.scale'.*low < high"),
        ({"source": {"kind": "file", "path": "x", "expected_rows": {"train": 3}}}, r"expected_rows as a mapping"),
        ({"mining": {"num_negatives": "three"}}, r"'datasets.toy.mining.num_negatives'"),
        ({"mining": {"keep_labelled": True}}, r"keep_labelled adds negatives to listwise rows, not pairs"),
        ({"mining": {"keep_labelled": True, "cross_encoder": "m"}}, r"cross_encoder rescoring and include_scores"),
        ({"format": "triplets", "teacher": {"model": "m"}}, r"teacher scores are added to the labels of pairs"),
        ({"teacher": {"model": "m", "weight": 0}}, r"'datasets.toy.teacher.weight'"),
        ({"teacher": {"model": "m", "bm25_share": 0.3}}, r"bm25_share mixes BM25 into the hybrid scorer"),
        ({"teacher": {"model": "m", "scorer": "hybrid", "bm25_share": 2}}, r"'datasets.toy.teacher.bm25_share'"),
    ],
)
def test_bad_entries_raise_config_errors_naming_the_key(change: dict, message: str) -> None:
    entry = {"source": {"kind": "file", "path": "x.tsv"}, "format": "pairs"} | change
    with pytest.raises(ConfigError, match=message):
        catalog.parse_catalog({"toy": entry})


def test_bad_dataset_name_and_missing_key() -> None:
    with pytest.raises(ConfigError, match="must be a plain folder name"):
        catalog.parse_catalog({"../escape": {"source": {"kind": "beir", "folder": "x"}, "format": "listwise"}})
    with pytest.raises(ConfigError, match=r"missing key 'datasets.toy.format'"):
        catalog.parse_catalog({"toy": {"source": {"kind": "beir", "folder": "x"}}})


def entry(**fields) -> catalog.DatasetEntry:
    return catalog.parse_catalog({"toy": fields})["toy"]


def test_local_jsonl_glob_with_label_map_threshold_and_lists(tmp_path: Path) -> None:
    for part, rows in {"a": [("q1", "d1", "yes"), ("q1", "d2", "no")], "b": [("q2", "d3", "maybe")]}.items():
        lines = [json.dumps({"question": q, "passage": d, "judgement": j}) for q, d, j in rows]
        (tmp_path / f"part-{part}.jsonl").write_text("\n".join(lines) + "\n")
    toy = entry(
        source={"kind": "file", "path": "part-*.jsonl", "split": "train"},
        columns={"query": "question", "document": "passage", "label": "judgement"},
        labels={"map": {"yes": 2, "maybe": 1, "no": 0}, "binary_threshold": 1},
        format="listwise",
    )
    prepared = catalog.build_dataset("toy", toy, tmp_path)
    table = prepared.splits["train"]
    assert table.to_dict("records") == [
        {"query": "q1", "documents": ["d1", "d2"], "labels": [1.0, 0.0]},
        {"query": "q2", "documents": ["d3"], "labels": [1.0]},
    ]
    assert set(prepared.manifest["inputs"]) == {"part-a.jsonl", "part-b.jsonl"}


def test_build_errors_name_dataset_file_column_and_row(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"dataset 'toy'.*absent.tsv does not exist"):
        catalog.build_dataset("toy", entry(source={"kind": "file", "path": "absent.tsv"}, format="pairs"), tmp_path)
    (tmp_path / "x.tsv").write_text("q\td\ty\nq1\td1\t1\nq2\td2\t\n")
    mapped = {"query": "q", "document": "d", "label": "y"}
    with pytest.raises(DataValidationError, match=r"dataset 'toy' \(.*x.tsv\), line 3: column 'y': missing label"):
        catalog.build_dataset(
            "toy", entry(source={"kind": "file", "path": "x.tsv"}, columns=mapped, format="pairs"), tmp_path
        )
    with pytest.raises(DataValidationError, match=r"dataset 'toy' \(x.tsv\): missing column\(s\) \['Label'\]"):
        catalog.build_dataset(
            "toy",
            entry(source={"kind": "file", "path": "x.tsv"}, columns={"query": "q", "label": "Label"}, format="pairs"),
            tmp_path,
        )
    (tmp_path / "ok.tsv").write_text("q\td\ty\nq1\td1\t1\n")
    with pytest.raises(ConfigError, match=r"datasets.toy.format: n-tuples cannot be made from pairs"):
        catalog.build_dataset(
            "toy", entry(source={"kind": "file", "path": "ok.tsv"}, columns=mapped, format="n-tuples"), tmp_path
        )
    with pytest.raises(DataValidationError, match=r"dataset 'toy/data': .*label 3.0 is outside \[0.0, 1.0\]"):
        (tmp_path / "ok.tsv").write_text("q\td\ty\nq1\td1\t3\n")
        toy = entry(
            source={"kind": "file", "path": "ok.tsv"},
            columns=mapped,
            format="pairs",
            validation={"loss": "BinaryCrossEntropyLoss"},
        )
        catalog.build_dataset("toy", toy, tmp_path)


def test_write_is_atomic(tmp_path: Path) -> None:
    good = catalog.PreparedDataset("toy", "pairs", {"train": pd.DataFrame({"query": ["q"]})}, {"name": "toy"})
    catalog.write_prepared(good, tmp_path / "toy")
    broken = catalog.PreparedDataset("toy", "pairs", {"train": pd.DataFrame({"query": [object()]})}, {"name": "toy"})
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error type; what matters is the old folder survives
        catalog.write_prepared(broken, tmp_path / "toy")
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["manifest.json", "train.parquet"]
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no staging folder left behind


def _fill_hub_cache(cache: Path, source: Path) -> None:
    """Leave in ``cache`` what a connected ``load_dataset("team/toy_pairs", "default")`` run would have left."""
    from datasets.packaged_modules.json.json import Json

    builder = Json(
        cache_dir=str(cache),
        dataset_name="team___toy_pairs",
        config_name="default",
        config_id="default",
        data_files={"train": [str(source)]},
        hash="0123456789abcdef",
    )
    builder.download_and_prepare()
    for arrow in cache.rglob("team___toy_pairs-*.arrow"):
        arrow.rename(arrow.with_name(arrow.name.replace("team___", "")))


def test_hub_source_loads_offline_from_a_local_datasets_cache(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(json.dumps({"q": f"q{i}", "d": f"d{i}", "y": i % 2}) for i in range(6)) + "\n")
    _fill_hub_cache(tmp_path / "hf-cache", source)
    toy = entry(
        source={"kind": "hub", "id": "team/toy_pairs", "config": "default", "split": "train", "cache_dir": "hf-cache"},
        columns={"query": "q", "document": "d", "label": "y"},
        format="pairs",
    )
    prepared = catalog.build_dataset("toy", toy, tmp_path)
    assert prepared.splits["train"]["label"].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert list(prepared.manifest["inputs"]) == ["hub:team/toy_pairs/default/train"]
    missing = entry(source={"kind": "hub", "id": "team/absent", "cache_dir": "hf-cache"}, format="pairs")
    with pytest.raises(DataValidationError, match=r"dataset 'toy': cannot load Hub dataset 'team/absent'.*offline"):
        catalog.build_dataset("toy", missing, tmp_path)


def test_listwise_lists_without_both_labels_can_be_dropped(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("q\td\tl\nq1\ta\t1\nq1\tb\t0\nq2\tc\t0\nq2\td\t0\nq3\te\t1\n")
    raw = {
        "lists": {
            "source": {"kind": "file", "path": str(path), "split": "train"},
            "columns": {"query": "q", "document": "d", "label": "l"},
            "format": "listwise",
            "require_positive_and_negative": True,
        }
    }
    entry = catalog.parse_catalog(raw)["lists"]
    table = catalog.build_dataset("lists", entry, tmp_path).splits["train"]
    assert table["query"].tolist() == ["q1"]
    assert [list(x) for x in table["labels"]] == [[1.0, 0.0]]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("sep", "||", "sep must be one character"),
        ("sep", '"', "sep must be one character"),
        ("encoding", "klingon-8", "unknown text encoding"),
        ("names", ["a", "b", "a"], "names must not repeat a column"),
    ],
)
def test_reader_options_that_the_reader_cannot_use_are_config_errors(option: str, value: object, expected: str) -> None:
    source = {"kind": "file", "path": "x.tsv", option: value}
    with pytest.raises(ConfigError, match=rf"'datasets.toy.source.file.{option}'.*{expected}"):
        catalog.parse_catalog({"toy": {"source": source, "format": "pairs"}})


def _labelled_lists(tmp_path: Path, rows: list[tuple[str, str, int]], **options: object) -> dict[str, object]:
    """A listwise catalog entry (lists without both labels dropped) over a TSV of ``(query, document, label)``."""
    path = tmp_path / "pairs.tsv"
    path.write_text("q\td\tl\n" + "".join(f"{q}\t{d}\t{label}\n" for q, d, label in rows))
    return {
        "source": {"kind": "file", "path": str(path), "split": "train"},
        "columns": {"query": "q", "document": "d", "label": "l"},
        "format": "listwise",
        "require_positive_and_negative": True,
        **options,
    }


def _build_lists(raw: dict[str, object], root: Path) -> catalog.PreparedDataset:
    return catalog.build_dataset("lists", catalog.parse_catalog({"lists": raw})["lists"], root)


BM25_ONE_NEGATIVE = {"method": "bm25", "num_negatives": 1, "keep_labelled": True, "cache_dir": "cache"}


def test_labelled_lists_gain_mined_negatives_and_teacher_targets(tmp_path: Path, tiny_bert_dir: Path) -> None:
    rows = [("red bus", "a big red bus", 1), ("red bus", "a red car", 0), ("old cat", "the old cat sleeps", 1)]
    rows += [("old cat", "a young dog", 0), ("river", "the river runs", 0), ("river", "a red river boat", 0)]
    raw = _labelled_lists(tmp_path, rows, mining=BM25_ONE_NEGATIVE)
    mined = _build_lists(raw, tmp_path)
    table = mined.splits["train"]
    assert table["query"].tolist() == ["red bus", "old cat"]
    assert list(table["documents"][0]) == ["a big red bus", "a red car", "a red river boat"]  # best BM25 match
    assert [list(labels) for labels in table["labels"]] == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert mined.manifest["mining"]["train"]["lists_extended"] == 2

    raw["teacher"] = {"model": str(tiny_bert_dir), "weight": 0.5}
    taught = _build_lists(raw, tmp_path)
    documents = [str(text) for text in taught.splits["train"]["documents"][0]]
    assert documents == list(table["documents"][0])
    cosine = BiEncoderScorer(str(tiny_bert_dir)).predict([("red bus", text) for text in documents])
    expected = [label + 0.5 * score for label, score in zip([1.0, 0.0, 0.0], cosine, strict=True)]
    assert list(taught.splits["train"]["labels"][0]) == pytest.approx(expected, abs=1e-6)
    assert taught.manifest["entry"]["teacher"]["weight"] == 0.5


def test_a_hybrid_teacher_grades_each_list_with_bm25_and_the_bi_encoder(tmp_path: Path, tiny_bert_dir: Path) -> None:
    rows = [("red bus", "a big red bus", 1), ("red bus", "a red car", 0), ("red bus", "the river runs", 0)]
    rows += [("old cat", "the old cat sleeps", 1), ("old cat", "a young dog", 0)]
    teacher = {"model": str(tiny_bert_dir), "scorer": "hybrid", "bm25_share": 0.5, "weight": 0.5}
    table = _build_lists(_labelled_lists(tmp_path, rows, teacher=teacher), tmp_path).splits["train"]
    pairs = [("red bus", text) for text in table["documents"][0]] + [("old cat", t) for t in table["documents"][1]]
    hybrid = HybridScorer(str(tiny_bert_dir), bm25_share=0.5).predict(pairs)
    labels = [float(label) for grades in table["labels"] for label in grades]
    expected = [label + 0.5 * score for label, score in zip([1, 0, 0, 1, 0], hybrid, strict=True)]
    assert labels == pytest.approx(expected, abs=1e-6)
    assert labels[0] == pytest.approx(1.5)  # the answer tops both scores of its list
    assert labels[2] < labels[1]  # "a red car" shares "red" with the query; "the river runs" shares nothing
    assert labels[3] == pytest.approx(1.5) and labels[4] == pytest.approx(0.0)  # scaled within its own list


def test_sentences_join_into_passage_lists_before_mining_and_teacher(tmp_path: Path, tiny_bert_dir: Path) -> None:
    rows = [("red bus", "a big red bus", 1), ("red bus", "it drives", 0), ("red bus", "a red car", 0)]
    rows += [("red bus", "parked", 0), ("old cat", "the old cat", 0), ("old cat", "sleeps", 1)]
    rows += [("old cat", "a young dog", 0), ("old cat", "barks", 0)]
    teacher = {"model": str(tiny_bert_dir), "weight": 1.0}
    raw = _labelled_lists(tmp_path, rows, passages={"size": 2}, mining=BM25_ONE_NEGATIVE, teacher=teacher)
    built = _build_lists(raw, tmp_path)
    table = built.splits["train"]
    assert table["query"].tolist() == ["red bus", "old cat"]
    # Two passages of the question's own page, then the other page's passage that BM25 ranks first.
    assert list(table["documents"][0]) == ["a big red bus it drives", "a red car parked", "the old cat sleeps"]
    assert list(table["documents"][1]) == ["the old cat sleeps", "a young dog barks", "a big red bus it drives"]
    labels = [float(label) for label in table["labels"][1]]
    assert labels[0] >= 1.0 and max(labels[1:]) < 1.0  # the answer's passage stays above the teacher-graded rest


def test_passage_lists_keep_the_questions_whose_sentences_hold_both_labels(tmp_path: Path) -> None:
    """A question is judged on its sentences, before joining: the same questions as the sentence lists."""
    rows = [("red bus", "a big red bus", 1), ("red bus", "it drives", 0)]  # one passage, and it holds the answer
    rows += [("old cat", "the old cat sleeps on a red bus", 0), ("old cat", "a dog barks", 0)]  # no answer
    rows += [("green tea", "green tea is a drink", 1), ("green tea", "from china", 0), ("green tea", "it is hot", 0)]
    built = _build_lists(_labelled_lists(tmp_path, rows, passages={"size": 2}, mining=BM25_ONE_NEGATIVE), tmp_path)
    table = built.splits["train"]
    assert table["query"].tolist() == ["red bus", "green tea"]
    # The all-answer page keeps its list, its negative mined from the unanswered page (still in the corpus).
    assert list(table["documents"][0]) == ["a big red bus it drives", "the old cat sleeps on a red bus a dog barks"]
    assert [float(label) for label in table["labels"][0]] == [1.0, 0.0]


def test_passage_lists_without_mining_drop_lists_of_one_label(tmp_path: Path) -> None:
    rows = [("red bus", "a big red bus", 1), ("red bus", "it drives", 0)]
    rows += [("green tea", "green tea is a drink", 1), ("green tea", "from china", 0), ("green tea", "it is hot", 0)]
    built = _build_lists(_labelled_lists(tmp_path, rows, passages={"size": 2}), tmp_path)
    assert built.splits["train"]["query"].tolist() == ["green tea"]  # one passage, one label: no ranking signal


def test_passages_cannot_join_a_beir_corpus() -> None:
    raw = {"source": {"kind": "beir", "folder": "data/raw/scifact"}, "format": "listwise", "passages": {"size": 3}}
    with pytest.raises(ConfigError, match="`passages` joins the sentences of a table of labelled pairs"):
        catalog.parse_catalog({"toy": raw})
