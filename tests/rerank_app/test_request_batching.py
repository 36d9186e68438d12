"""The micro-batcher: concurrent requests share model calls, keep their own scores, and a full queue refuses."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rerank_app.request_batching import MicroBatcher, Pair, QueueFullError


def by_length(pairs: list[Pair]) -> list[float]:
    return [float(len(query) * 100 + len(passage)) for query, passage in pairs]


def requests_of(count: int, size: int) -> list[list[Pair]]:
    return [[(f"q{'?' * i}", "x" * j) for j in range(size)] for i in range(count)]


def score_concurrently(batcher: MicroBatcher, requests: list[list[Pair]]) -> list[list[float]]:
    """Submit every request at once to a started batcher; their scores, in request order."""

    async def scenario() -> list[list[float]]:
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(r) for r in requests))
        finally:
            await batcher.stop()

    return asyncio.run(scenario())


def test_concurrent_requests_share_model_calls_and_get_their_own_scores() -> None:
    calls: list[int] = []

    def score(pairs: list[Pair]) -> list[float]:
        calls.append(len(pairs))
        time.sleep(0.02)
        return by_length(pairs)

    results = score_concurrently(MicroBatcher(score, max_batch_pairs=64, max_queued=32), requests_of(10, 3))
    assert results == [by_length(r) for r in requests_of(10, 3)]
    assert sum(calls) == 30 and len(calls) <= 2  # ten requests, at most two model calls


def test_batches_stop_at_max_batch_pairs_and_a_large_request_is_scored_alone() -> None:
    calls: list[int] = []

    def score(pairs: list[Pair]) -> list[float]:
        calls.append(len(pairs))
        return by_length(pairs)

    requests = [*requests_of(4, 3), *requests_of(1, 25)]
    results = score_concurrently(MicroBatcher(score, max_batch_pairs=10, max_queued=32), requests)
    assert results[-1] == by_length(requests_of(1, 25)[0])
    assert calls == [9, 3, 25]


def test_a_full_queue_refuses_and_the_waiting_requests_still_finish() -> None:
    release = threading.Event()

    def score(pairs: list[Pair]) -> list[float]:
        release.wait(timeout=10)
        return by_length(pairs)

    async def scenario() -> tuple[list[list[float]], bool]:
        batcher = MicroBatcher(score, max_batch_pairs=1, max_queued=2)
        await batcher.start()
        try:
            first = asyncio.create_task(batcher.submit([("a", "b")]))
            await asyncio.sleep(0.05)  # the first request is being scored; the queue is empty again
            waiting = [asyncio.create_task(batcher.submit([("c", str(i))])) for i in range(2)]
            await asyncio.sleep(0.01)
            assert batcher.queued == 2
            with pytest.raises(QueueFullError):
                await batcher.submit([("d", "e")])
            release.set()
            return await asyncio.gather(first, *waiting), batcher.queued == 0
        finally:
            await batcher.stop()

    results, drained = asyncio.run(scenario())
    assert results == [by_length([("a", "b")]), by_length([("c", "0")]), by_length([("c", "1")])]
    assert drained


def test_a_failing_batch_fails_its_requests_and_the_next_batch_runs() -> None:
    def score(pairs: list[Pair]) -> list[float]:
        if any(query == "boom" for query, _ in pairs):
            raise ValueError("bad batch")
        return by_length(pairs)

    async def scenario() -> list[float]:
        batcher = MicroBatcher(score)
        await batcher.start()
        try:
            with pytest.raises(ValueError, match="bad batch"):
                await batcher.submit([("boom", "x")])
            return await batcher.submit([("fine", "y")])
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) == by_length([("fine", "y")])


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_score_that_many_batches_at_once(workers: int) -> None:
    lock = threading.Lock()
    running, most = [0], [0]

    def score(pairs: list[Pair]) -> list[float]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return by_length(pairs)

    batcher = MicroBatcher(score, max_batch_pairs=3, max_queued=32, workers=workers)
    results = score_concurrently(batcher, requests_of(6, 3))
    assert results == [by_length(r) for r in requests_of(6, 3)]  # each request its own scores, in order
    assert most[0] == workers  # six full batches: one at a time, or two at once


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        MicroBatcher(by_length, workers=0)
