"""`rerank init-data`: each usual shape of a team's data gets a profile that loads and names only that data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rerank_app.cli import main
from tasks.config import load_params
from tests.own_data_support import write_collection

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("file", "fmt", "kind", "metric"),
    [
        ("pairs.csv", "pairs", "classification", "pairs_test_average_precision"),
        ("lists.jsonl", "reranking", "reranking", "lists_test_ndcg@10"),
        ("triplets.tsv", "triplets", "reranking", "triplets_test_ndcg@10"),
    ],
)
def test_a_file_gets_a_profile_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture, file: str, fmt: str, kind: str, metric: str
) -> None:
    collection = write_collection(tmp_path / "data")
    assert main(["--root", str(ROOT), "init-data", str(collection.folder / file)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# A profile for {collection.folder / file}")
    profile = yaml.safe_load(text)
    name = file.split(".")[0]
    assert profile["prepare"]["datasets"][name]["format"] == fmt
    profile_file = tmp_path / "mine.yaml"
    profile_file.write_text(text)
    cfg = load_params(ROOT / "params.yaml", profile=str(profile_file))
    assert list(cfg.train.datasets) == [name] and cfg.train.evaluation.steps is None
    assert [spec.kind for spec in cfg.evaluate.suite.values()] == [kind]
    assert cfg.promote.metric == metric
    assert [(spec.kind, spec.split) for spec in cfg.dev.suite.values()] == [(kind, "dev")]  # what package, tune judge
    assert cfg.tune.study == name and set(cfg.tune.space) == {"train.learning_rate", "train.epochs"}
    if fmt == "pairs":
        assert profile["prepare"]["datasets"][name]["columns"] == {"document": "passage"}


def test_graded_labels_become_a_correlation_evaluator_with_scaled_labels(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "sts.tsv"
    path.write_text("sentence1\tsentence2\tscore\na cat\ta dog\t1.5\na car\ta bus\t4\na red bus\ta bus\t5\n")
    assert main(["--root", str(ROOT), "init-data", str(path), "--name", "my-sts"]) == 0
    profile = yaml.safe_load(capsys.readouterr().out)
    entry = profile["prepare"]["datasets"]["my-sts"]
    assert entry["columns"] == {"query": "sentence1", "document": "sentence2", "label": "score"}
    assert entry["labels"] == {"scale": [1.5, 5.0]}
    assert profile["evaluate"]["suite"]["my_sts_test"]["kind"] == "correlation"


def test_a_beir_folder_is_evaluated_and_its_train_qrels_trained_on(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    collection = write_collection(tmp_path / "data")
    assert main(["--root", str(ROOT), "init-data", str(collection.beir)]) == 0
    profile = yaml.safe_load(capsys.readouterr().out)
    assert profile["evaluate"]["suite"]["beir_test"] == {
        "kind": "beir",
        "folder": str(collection.beir),
        "split": "test",
        "top_k": 100,
    }
    assert profile["prepare"]["datasets"]["beir"]["source"] == {
        "kind": "beir",
        "folder": str(collection.beir),
        "split": "train",
    }
    profile_file = tmp_path / "beir.yaml"
    profile_file.write_text(yaml.safe_dump(profile))
    cfg = load_params(ROOT / "params.yaml", profile=str(profile_file))
    assert cfg.train.evaluation.folder == str(collection.beir) and cfg.promote.metric == "beir_test_ndcg@10"
    (dev,) = cfg.dev.suite.values()  # a tenth of the train queries, held out of training
    assert (dev.dataset, dev.split) == ("beir", "dev") and cfg.prepare.datasets["beir"].split.fractions["dev"] == 0.1


def test_columns_without_a_known_role_are_named_in_the_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "odd.csv"
    path.write_text("a,b,c\n1,2,3\n")
    assert main(["--root", str(ROOT), "init-data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the roles of the columns ['a', 'b', 'c']" in err and "docs/own-data.md" in err
