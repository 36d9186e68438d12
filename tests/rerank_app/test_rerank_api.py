"""The /rerank API over real HTTP (uvicorn on a loopback port) around the tiny model: scores, order, errors, 503."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from rerank_app.champion import ServedVersion
from rerank_app.request_batching import Pair
from rerank_app.rerank_api import BatchSettings, create_app
from rerank_lib import CrossEncoder
from tests.server_support import free_port

SERVED = ServedVersion("team-reranker", "7", "champion", "sqlite:///unused.db")
QUERY = "what is the capital of france"
DOCUMENTS = ["paris is the capital of france", "a dog runs", "berlin is a city in germany", "the cat sleeps"]


@contextmanager
def api(score: Callable[[list[Pair]], Sequence[float]], settings: BatchSettings | None = None) -> Iterator[str]:
    """The app under uvicorn in a thread on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(score, SERVED, settings or BatchSettings()), "127.0.0.1", port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()


def assert_versioned(response: httpx.Response) -> None:
    assert response.headers["X-Model-Name"] == "team-reranker"
    assert response.headers["X-Model-Version"] == "7"


def test_rerank_orders_documents_by_the_models_scores(tiny_model: CrossEncoder) -> None:
    expected = tiny_model.predict([(QUERY, d) for d in DOCUMENTS]).tolist()
    with api(lambda pairs: tiny_model.predict(pairs, show_progress_bar=False)) as url:
        response = httpx.post(f"{url}/rerank", json={"query": QUERY, "documents": DOCUMENTS})
        assert response.status_code == 200
        assert_versioned(response)
        results = response.json()
        assert [r["index"] for r in results] == sorted(range(len(DOCUMENTS)), key=lambda i: -expected[i])
        assert {r["index"]: r["relevance_score"] for r in results} == pytest.approx(dict(enumerate(expected)), abs=1e-6)
        assert all(set(r) == {"index", "relevance_score"} for r in results)

        top = httpx.post(f"{url}/rerank", json={"query": QUERY, "documents": DOCUMENTS, "top_n": 2}).json()
        assert top == results[:2]
        with_text = httpx.post(
            f"{url}/rerank", json={"query": QUERY, "documents": DOCUMENTS, "return_documents": True, "model": "x"}
        ).json()
        assert [r["document"] for r in with_text] == [DOCUMENTS[r["index"]] for r in results]

        health = httpx.get(f"{url}/health")
        assert health.status_code == 200 and health.json()["version"] == "7"
        assert_versioned(health)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"documents": DOCUMENTS}, "query"),
        ({"query": QUERY}, "documents"),
        ({"query": QUERY, "documents": []}, "documents"),
        ({"query": "", "documents": DOCUMENTS}, "query"),
        ({"query": QUERY, "documents": [1, 2]}, "documents"),
        ({"query": QUERY, "documents": DOCUMENTS, "top_n": 0}, "top_n"),
        ({"query": QUERY, "documents": DOCUMENTS, "texts": DOCUMENTS}, "texts"),
    ],
)
def test_malformed_requests_get_422_naming_the_field(body: dict, field: str, tiny_model: CrossEncoder) -> None:
    with api(lambda pairs: tiny_model.predict(pairs, show_progress_bar=False)) as url:
        response = httpx.post(f"{url}/rerank", json=body)
        assert response.status_code == 422, response.text
        assert_versioned(response)
        assert any(field in error["loc"] for error in response.json()["detail"])
        assert "Traceback" not in response.text


def test_not_json_gets_422_and_a_failing_model_a_500_without_traceback() -> None:
    def broken(pairs: list[Pair]) -> Sequence[float]:
        raise RuntimeError("secret internal state")

    with api(broken) as url:
        response = httpx.post(f"{url}/rerank", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 422 and "JSON" in response.text
        failed = httpx.post(f"{url}/rerank", json={"query": QUERY, "documents": DOCUMENTS})
        assert failed.status_code == 500
        assert_versioned(failed)
        assert failed.json() == {"detail": "Scoring failed; see the server log."}


def test_a_full_queue_answers_503_and_every_admitted_request_is_scored() -> None:
    entered, release = threading.Event(), threading.Event()
    batches: list[int] = []

    def slow(pairs: list[Pair]) -> Sequence[float]:
        entered.set()
        release.wait(timeout=20)
        batches.append(len(pairs))
        return [float(len(passage)) for _, passage in pairs]

    with api(slow, BatchSettings(max_batch_pairs=100, max_queued=2)) as url:

        def post(document: str) -> httpx.Response:
            return httpx.post(f"{url}/rerank", json={"query": "q", "documents": [document]}, timeout=30)

        with ThreadPoolExecutor(max_workers=3) as pool:
            admitted = [pool.submit(post, "x")]
            assert entered.wait(timeout=10), "the first request was not scored"
            admitted += [pool.submit(post, "x" * n) for n in (2, 3)]  # waiting while the first is scored
            deadline = time.monotonic() + 10
            while httpx.get(f"{url}/health").json()["queued"] < 2:
                assert time.monotonic() < deadline, "the requests did not queue up"
                time.sleep(0.02)
            refused = post("refused")
            release.set()
            responses = [future.result() for future in admitted]
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert_versioned(refused)
        assert "busy" in refused.json()["detail"]
        assert [r.json()[0]["relevance_score"] for r in responses] == [1.0, 2.0, 3.0]
        assert batches == [1, 2]  # the two waiting requests were scored in one model call
