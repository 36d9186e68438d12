"""Multi-process predict and rank: two CPU worker processes give the single-process scores, in input order."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rerank_lib import CrossEncoder
from rerank_lib.multi_process import WorkerError

WORDS = "the a capital city paris france berlin cat dog river book reads music red blue small big".split()


def pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [
        (" ".join(rng.sample(WORDS, rng.randint(2, 5))), " ".join(rng.choices(WORDS, k=rng.randint(3, 30))))
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def model(tiny_bert_dir: Path) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder(tiny_bert_dir, device="cpu", prompts={"q": "question : "})


def test_two_cpu_processes_score_like_one_in_input_order(model: CrossEncoder) -> None:
    data = pairs(57)
    single = model.predict(data, batch_size=8)
    # chunks of 5: 12 chunks over 2 workers, answered out of order; the result must still follow the input
    multi = model.predict(data, batch_size=8, devices=["cpu", "cpu"], chunk_size=5)
    assert multi.shape == single.shape
    np.testing.assert_allclose(multi, single, atol=1e-6, rtol=0)


def test_a_pool_serves_several_calls_with_their_options(model: CrossEncoder) -> None:
    data = pairs(20, seed=1)
    with model.start_multi_process_pool(["cpu", "cpu"], num_threads=1) as pool:
        assert len(pool.processes) == 2 and all(process.is_alive() for process in pool.processes)
        np.testing.assert_allclose(model.predict(data, pool=pool, chunk_size=3), model.predict(data), atol=1e-6)
        prompted = model.predict(data, pool=pool, prompt_name="q", chunk_size=4)
        np.testing.assert_allclose(prompted, model.predict(data, prompt_name="q"), atol=1e-6)
        tensor = model.predict(data[:3], pool=pool, convert_to_tensor=True)
        assert isinstance(tensor, torch.Tensor) and tensor.shape == (3,)
        assert model.predict(data[0], pool=pool) == pytest.approx(float(model.predict(data[0])), abs=1e-6)
        ranked = model.rank("capital city", [d for _, d in data], pool=pool, top_k=5)
        assert ranked == [
            {"corpus_id": item["corpus_id"], "score": pytest.approx(item["score"], abs=1e-6)}
            for item in model.rank("capital city", [d for _, d in data], top_k=5)
        ]
        with pytest.raises(WorkerError, match="prompt_name='nope'"):
            model.predict(data, pool=pool, prompt_name="nope")
        np.testing.assert_allclose(model.predict(data[:4], pool=pool), model.predict(data[:4]), atol=1e-6)
    assert all(not process.is_alive() for process in pool.processes)
