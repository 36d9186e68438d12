"""The package stage: what ships is chosen on the dev split, written with one face, and evaluated as it ships."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from rerank_lib import CrossEncoder, RerankPackage, load_reranker
from rerank_lib.bi_encoder import BiEncoderScorer
from rerank_lib.errors import ModelLoadError
from rerank_lib.package import CROSS_ENCODER_FOLDER, PACKAGE_FILE, CrossEncoderLogits
from tasks.config import PipelineConfig
from tasks.dev_eval import Judgement
from tasks.evaluate import CROSS_ENCODER_COMPONENT, run_evaluate
from tasks.mlflow_model import MODEL_ARTIFACT, CrossEncoderPyfunc
from tasks.package import run_package
from tasks.package_choice import ShareChoice, pick
from tasks.train import SUMMARY_FILE
from tests.tasks.train_testkit import DATASET, QUESTIONS, train_toy_model


def reranking_split(prepared: Path, name: str, split: str) -> None:
    """Each toy question with its answer, its wrong answer and two other questions' answers, as `prepare` writes it."""
    answers = [positive for _, positive, _ in QUESTIONS]
    frame = pd.DataFrame(
        {
            "query": [question for question, _, _ in QUESTIONS],
            "positive": [[positive] for _, positive, _ in QUESTIONS],
            "negative": [[negative, *[a for a in answers if a != positive][:2]] for _, positive, negative in QUESTIONS],
        }
    )
    (prepared / name).mkdir(parents=True, exist_ok=True)
    frame.to_parquet(prepared / name / f"{split}.parquet", index=False)


def params(root: Path, base: Path, **package: Any) -> PipelineConfig:
    """Params naming the toy training lists and a toy dev set; ``package`` overrides the package section."""
    source = {"kind": "file", "path": {"train": "unused.jsonl"}}
    return PipelineConfig.model_validate(
        {
            "prepare": {
                "datasets": {
                    DATASET: {"source": source, "format": "listwise"},
                    "toy-dev": {"source": {"kind": "file", "path": {"dev": "d.jsonl", "test": "t.jsonl"}},
                                "format": "reranking"},
                }
            },
            "train": {"base_model": str(base), "datasets": {DATASET: {"loss": "ListNetLoss"}}},
            "evaluate": {"suite": {"toy_test": {"kind": "reranking", "dataset": "toy-dev", "first_stage": "bm25"}}},
            "dev": {
                "suite": {"toy_dev": {"kind": "reranking", "dataset": "toy-dev", "split": "dev",
                                      "first_stage": "bm25"}},
                "objective": {"metrics": {"toy_dev_ndcg@10": 1.0}},
                "bi_encoder": str(base),
            },
            "package": {"shares": [0.0, 0.5], **package},
            "tracking": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "toy-lists"},
        }
    )  # fmt: skip


@pytest.fixture
def trained(tiny_bert_dir: Path, tmp_path: Path) -> Path:
    out = train_toy_model(tmp_path, tiny_bert_dir, epochs=1)
    for split in ("dev", "test"):
        reranking_split(tmp_path / "data" / "prepared", "toy-dev", split)
    return out


def package(cfg: PipelineConfig, root: Path) -> Any:
    layout = root / "artifacts"
    return run_package(cfg, layout / "trained", root / "data" / "prepared", layout / "packaged", layout / "dev", root)


def test_the_share_is_chosen_on_dev_and_a_package_ships_with_one_face(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    # BM25 ranks the toy answers well (they repeat the questions' words); a barely trained model does not.
    result = package(params(tmp_path, tiny_bert_dir, first_stage="bm25"), tmp_path)
    report = json.loads(result.report.read_text())
    judged = {float(share): row for share, row in report["shares"].items()}
    assert set(judged) == {0.0, 0.5} and report["baselines"]["bm25"]["toy_dev_ndcg@10"] == 1.0
    best = max(judged, key=lambda share: judged[share]["objective"])
    assert report["share"] == best == result.share == 0.5 and result.shipped == "package"
    assert "the best dev objective" in report["reason"]
    assert (result.out_dir / PACKAGE_FILE).is_file() and (result.out_dir / SUMMARY_FILE).is_file()
    with pytest.raises(ModelLoadError, match="rerank package"):
        CrossEncoder(result.out_dir)  # nothing loads the package as a plain cross-encoder
    assert isinstance(load_reranker(result.out_dir), RerankPackage)


def test_without_a_mix_to_choose_the_cross_encoder_ships_alone(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    result = package(params(tmp_path, tiny_bert_dir, first_stage="none"), tmp_path)
    report = json.loads(result.report.read_text())
    assert result.shipped == "cross_encoder" and report == {
        "shipped": "cross_encoder",
        "share": 0.0,
        "reason": "the cross-encoder alone: package.first_stage is none",
    }
    assert (result.out_dir / "model.safetensors").read_bytes() == (trained / "model.safetensors").read_bytes()
    assert isinstance(load_reranker(result.out_dir), CrossEncoder)


def test_a_bi_encoder_mix_is_scaled_by_the_dev_candidates_scores(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    result = package(params(tmp_path, tiny_bert_dir), tmp_path)  # first stage: the bi-encoder, normalization auto
    report = json.loads(result.report.read_text())
    dev = pd.read_parquet(tmp_path / "data" / "prepared" / "toy-dev" / "dev.parquet")
    pairs = [(row.query, text) for row in dev.itertuples() for text in [*row.positive, *row.negative]]
    logits = CrossEncoderLogits(CrossEncoder(str(trained))).predict(pairs)
    cosines = BiEncoderScorer(str(tiny_bert_dir)).predict(pairs)
    assert report["normalization"] == "dev-standard"
    assert report["scales"]["cross_encoder"] == pytest.approx([logits.mean(), logits.std()], abs=1e-5)
    assert report["scales"]["first_stage"] == pytest.approx([cosines.mean(), cosines.std()], abs=1e-5)
    # Whichever share ships, a package at any share carries those scales and scores a lone pair as in its list.
    spec = replace(choice_of(report), share=0.5).spec()
    assert spec.scales == report["scales"] and spec.normalization == "dev-standard"
    mixed = RerankPackage(CrossEncoderLogits(CrossEncoder(str(trained))), BiEncoderScorer(str(tiny_bert_dir)), spec)
    np.testing.assert_allclose(mixed.predict(pairs[:1]), mixed.predict(pairs)[:1], atol=5e-4)


def test_the_dev_bi_encoder_scores_come_from_the_score_store_on_the_next_run(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = params(tmp_path, tiny_bert_dir)
    first = json.loads(package(cfg, tmp_path).report.read_text())
    assert any((tmp_path / ".cache" / "scores").rglob("*.npy"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rerank_lib.score_store"):
        second = json.loads(package(cfg, tmp_path).report.read_text())
    assert "scores of BiEncoderScorer from the score cache" in caplog.text  # nothing recomputed for the baselines
    assert second["baselines"] == first["baselines"] and second["scales"] == first["scales"]


def test_a_bm25_first_stage_cannot_take_a_dev_scale(tiny_bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dev-standard does not fit first_stage bm25"):
        params(tmp_path, tiny_bert_dir, first_stage="bm25", normalization="dev-standard")
    assert params(tmp_path, tiny_bert_dir, first_stage="bm25").package.scale() == "query-min-max"


def choice_of(report: dict[str, Any]) -> ShareChoice:
    """The ShareChoice a package.json records (its judgements left out)."""
    return ShareChoice(
        report["share"], report["reason"], {}, report["baselines"], report["first_stage"], report["bi_encoder"],
        report["normalization"], report["scales"],
    )  # fmt: skip


def judgement(objective: float, *held: bool) -> Judgement:
    return Judgement({}, objective, [{"guard": "g", "value": 0, "bar": 0, "held": value} for value in held])


def test_guards_decide_before_the_objective_and_ties_go_to_less_of_the_first_stage() -> None:
    assert pick({0.0: judgement(0.7, False), 0.3: judgement(0.6, True), 0.6: judgement(0.9, False)})[0] == 0.3
    assert pick({0.0: judgement(0.8), 0.3: judgement(0.8), 0.6: judgement(0.7)})[0] == 0.0
    share, reason = pick({0.0: judgement(0.5, False), 0.4: judgement(0.6, False)})
    assert share == 0.4 and reason.startswith("share 0.4 of the first stage: no share holds every guard")


def test_evaluate_scores_what_ships_with_the_cross_encoder_alone_beside_it(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    cfg = params(tmp_path, tiny_bert_dir, first_stage="bm25")
    shipped = package(cfg, tmp_path).out_dir
    prepared = tmp_path / "data" / "prepared"
    run_evaluate(cfg.evaluate, cfg.tracking, shipped, prepared, tmp_path / "eval", tmp_path)
    run_evaluate(cfg.evaluate, cfg.tracking, shipped / CROSS_ENCODER_FOLDER, prepared, tmp_path / "alone", tmp_path)
    numbers = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    alone = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["shipped"] == {"kind": "package", "share": 0.5, "first_stage": "bm25", "scale": "query-min-max"}
    # The cross-encoder alone inside the package is measured as the plain folder measures it ...
    assert numbers["components"][CROSS_ENCODER_COMPONENT] == pytest.approx(alone["components"][CROSS_ENCODER_COMPONENT])
    assert alone["components"][CROSS_ENCODER_COMPONENT] == pytest.approx(
        {k: v for k, v in alone["metrics"].items() if "_base_" not in k}
    )
    # ... and what ships is the package, a different measurement, with both baselines beside them.
    assert numbers["metrics"]["toy_test_ndcg@10"] != numbers["components"][CROSS_ENCODER_COMPONENT]["toy_test_ndcg@10"]
    assert set(numbers["baselines"]) == {"bm25", "bi_encoder"}


def test_the_pyfunc_scores_a_package_as_evaluated_and_takes_a_first_stage_score(
    trained: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    shipped = package(params(tmp_path, tiny_bert_dir, first_stage="bm25"), tmp_path).out_dir
    pyfunc = CrossEncoderPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts={MODEL_ARTIFACT: str(shipped)}))
    question, positive, negative = QUESTIONS[0]
    frame = pd.DataFrame({"query": [question] * 3, "passage": [positive, negative, QUESTIONS[1][1]]})
    pairs = list(zip(frame["query"], frame["passage"], strict=True))
    np.testing.assert_allclose(pyfunc.predict(None, frame), load_reranker(shipped).predict(pairs), atol=1e-6)
    given = frame.assign(first_stage_score=[0.0, 9.0, 3.0])
    expected = load_reranker(shipped).predict(pairs, first_stage_scores=[0.0, 9.0, 3.0])
    np.testing.assert_allclose(pyfunc.predict(None, given), expected, atol=1e-6)
    assert pyfunc.predict(None, given)[1] > pyfunc.predict(None, frame)[1]  # the team's score counted
    with pytest.raises(MlflowException, match="every row, or on none"):
        pyfunc.predict(None, frame.assign(first_stage_score=[1.0, None, 2.0]))
