"""Dev splits: cut by query, recorded in the manifest, never trained on, never a reported or test split."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rerank_lib.errors import ConfigError
from rerank_lib.retrieval.beir import load_beir
from tasks.catalog import build_dataset, parse_catalog
from tasks.config import PipelineConfig, load_params
from tasks.held_out import held_out_query_ids
from tests.own_data_support import write_collection

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def load(tmp_path: Path, change: Any) -> PipelineConfig:
    data = copy.deepcopy(PARAMS)
    change(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_params(path)


def test_the_default_params_hold_out_dev_queries_that_training_never_reads(tmp_path: Path) -> None:
    cfg = load(tmp_path, lambda data: None)
    assert cfg.prepare.datasets["wikiqa-train-lists"].split == cfg.prepare.datasets["wikiqa-heldout"].split
    assert {spec.split for spec in cfg.dev.suite.values()} == {"dev"}
    assert {spec.split for spec in cfg.train.datasets.values()} == {"train"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["dev"]["suite"]["wikiqa_heldout"].update(split="test"),
            r"dev.suite.wikiqa_heldout reads the 'test' split: choices are made on dev splits only",
        ),
        (
            lambda d: (
                d["dev"]["suite"].update(stsb={"kind": "correlation", "dataset": "stsbenchmark", "split": "dev"})
                or d["evaluate"]["suite"].update(
                    stsb_dev={"kind": "correlation", "dataset": "stsbenchmark", "split": "dev"}
                )
            ),
            r"dev.suite reads stsbenchmark split 'dev', which evaluate.suite reports",
        ),
        (
            lambda d: d["dev"]["suite"].update(sci={"kind": "beir", "folder": "data/raw/scifact", "split": "dev"}),
            r"dev.suite reads data/raw/scifact qrels split 'dev', which evaluate.suite reports",
        ),
        (
            lambda d: d["train"]["datasets"]["wikiqa-train-lists"].update(split="dev"),
            r"train.datasets.wikiqa-train-lists.split: 'dev' names a held-out split",
        ),
        (
            lambda d: d["prepare"]["datasets"]["wikiqa-train-lists"].update(
                split={"seed": 7, "group_by": "query", "fractions": {"train": 0.85, "dev": 0.15}}
            ),
            r"train.datasets.wikiqa-train-lists and the evaluated dataset 'wikiqa-heldout' read the same source but "
            r"split it differently",
        ),
        (
            lambda d: d["evaluate"]["suite"].update(
                sci_train={"kind": "beir", "folder": "data/raw/scifact", "split": "train"}
            ),
            r"train.datasets.scifact-train-lists.split: an evaluator scores every query of data/raw/scifact qrels "
            r"'train'",
        ),
        (
            lambda d: d["dev"]["suite"]["scifact_heldout"].update(split="holdout"),
            r"dev.suite.scifact_heldout.split 'holdout': the split rule of 'scifact-train-lists' has "
            r"\['dev', 'train'\]",
        ),
        (
            lambda d: d["dev"]["suite"]["scifact_heldout"].update(dataset="trec-dl19"),
            r"'trec-dl19' needs a `split` rule grouped by query",
        ),
        (
            lambda d: d["dev"]["objective"]["guards"].append({"metric": "wikiqa_test_ndcg@10", "above": "bm25"}),
            r"dev.objective.guards\[2\].metric: 'wikiqa_test_ndcg@10' is not a dev metric",
        ),
        (lambda d: d.pop("dev"), r"tune judges trials on the dev suite, but params have no `dev` section"),
        (
            lambda d: d["train"].update(score_fusion={"prior_share": 0.6}),
            r"train.score_fusion is gone: the package stage chooses on the dev split",
        ),
        (lambda d: d["package"].update(shares=[0.2, 0.4]), r"shares must hold 0 \(the cross-encoder alone\)"),
    ],
)
def test_params_that_would_leak_or_judge_on_reported_data_fail_naming_the_key(
    tmp_path: Path, change: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, change)


def test_a_beir_dev_split_holds_out_the_same_queries_the_training_part_lacks(tmp_path: Path) -> None:
    collection = write_collection(tmp_path / "acme", queries=40)
    rules = {"seed": 3, "group_by": "query", "fractions": {"train": 0.7, "dev": 0.3}}
    ((name, entry),) = parse_catalog(
        {
            "acme-beir": {
                "source": {"kind": "beir", "folder": str(collection.beir), "split": "train"},
                "format": "listwise",
                "mining": {"method": "bm25", "num_negatives": 2, "range_max": 10},
                "split": rules,
            }
        }
    ).items()
    prepared = build_dataset(name, entry, tmp_path)
    trained = set(prepared.splits["train"]["query"])
    held = set(prepared.splits["dev"]["query"])
    qrels_split, ids = held_out_query_ids(entry, "dev", tmp_path)
    _, queries, _ = load_beir(collection.beir, "train")
    assert qrels_split == "train" and {queries[query_id] for query_id in ids} == held
    assert held and trained and not held & trained
    record = prepared.manifest["split"]
    assert record["held_out"] == ["dev"] and record["groups"] == {"train": len(trained), "dev": len(held)}
    assert record["seed"] == 3 and record["fractions"] == rules["fractions"]
