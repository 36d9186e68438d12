"""Micro-batching of concurrent scoring requests behind a bounded queue.

One model call scores the pairs of every request waiting at that moment (up to ``max_batch_pairs``), so many small
concurrent requests cost a few large forward passes instead of many small ones, and no request waits for a timer:
at low load a request is scored alone at once, under load the batch grows while the previous one runs. With
``workers`` above 1, that many batches are scored at once in their own threads: with one scoring thread per model
call (``--threads 1``) a single worker leaves the other cores idle, where a server that scores each request in its
own thread (MLflow's) uses them. At most
``max_queued`` requests wait; beyond that :meth:`MicroBatcher.submit` raises :class:`QueueFullError` (the API
answers 503), so a burst sheds load instead of growing an unbounded backlog.

Written here rather than taken from a serving framework: the frameworks that batch (Ray Serve, Triton, BentoML)
each bring their own server and process model; this is the forty lines the FastAPI app needs.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Pair = tuple[str, str]


class QueueFullError(Exception):
    """Too many requests are already waiting; the caller should retry later."""


@dataclass
class _Job:
    pairs: list[Pair]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Scores request after request, gathering every waiting request into one call of ``score``.

    ``score`` is synchronous (a model's predict) and runs in a thread, ``workers`` batches at a time; it must be safe
    to call from several threads at once when ``workers`` is above 1 (a torch or ONNX Runtime model in inference is).
    """

    def __init__(
        self,
        score: Callable[[list[Pair]], Sequence[float]],
        max_batch_pairs: int = 64,
        max_queued: int = 32,
        workers: int = 1,
    ) -> None:
        if max_batch_pairs < 1 or max_queued < 1 or workers < 1:
            raise ValueError("max_batch_pairs, max_queued and workers must be at least 1")
        self._score = score
        self.max_batch_pairs = max_batch_pairs
        self.max_queued = max_queued
        self.workers = workers
        self._pending: collections.deque[_Job] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self.batch_sizes: list[int] = []  # pairs per model call, most recent last (bounded)

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(), name=f"rerank-batcher-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(RuntimeError("The server is shutting down."))

    async def submit(self, pairs: list[Pair]) -> list[float]:
        """The scores of ``pairs`` in order, once a batch holding them has run."""
        if self._wakeup is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        if len(self._pending) >= self.max_queued:
            raise QueueFullError(f"{len(self._pending)} requests are already waiting")
        job = _Job(list(pairs), asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    def _next_batch(self) -> list[_Job]:
        jobs = [self._pending.popleft()]  # a request larger than max_batch_pairs is scored alone, never split
        size = len(jobs[0].pairs)
        while self._pending and size + len(self._pending[0].pairs) <= self.max_batch_pairs:
            size += len(self._pending[0].pairs)
            jobs.append(self._pending.popleft())
        return jobs

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            jobs = [job for job in self._next_batch() if not job.future.done()]  # drop requests whose client left
            pairs = [pair for job in jobs for pair in job.pairs]
            if not pairs:
                for job in jobs:
                    job.future.set_result([])
                continue
            try:
                scores = [float(s) for s in await asyncio.to_thread(self._score, pairs)]
            except Exception as error:  # every request of the batch gets the error; the loop goes on
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            self.batch_sizes = [*self.batch_sizes[-999:], len(pairs)]
            offset = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(scores[offset : offset + len(job.pairs)])
                offset += len(job.pairs)
