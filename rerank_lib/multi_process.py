"""Scoring in several worker processes, one per device (GPUs, or CPU processes), with the input order kept.

``CrossEncoder.predict(pairs, devices=["cuda:0", "cuda:1"])`` starts one worker per device, scores, and stops them;
``pool = model.start_multi_process_pool(["cpu", "cpu"])`` keeps the workers for many calls (``predict(pool=pool)``).
Pairs go to the workers in chunks through one queue (a free worker takes the next chunk), and the chunks' scores are
put back in input order. Workers are started with ``spawn`` (safe with CUDA and with threads in the parent) and get
the model once, at start: a model changed afterwards needs a new pool. Only the torch backend runs in a pool.

Why our own pool rather than ``multiprocessing.Pool``: the model must be sent to each worker once and moved to that
worker's device, which a pool of interchangeable workers cannot express.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.multiprocessing as mp
from tqdm.auto import tqdm

from rerank_lib.errors import ConfigError, RerankError

if TYPE_CHECKING:
    from rerank_lib.model import CrossEncoder

logger = logging.getLogger(__name__)

WORKER_START_TIMEOUT_S = 300.0
MAX_CHUNK_PAIRS = 5000


class WorkerError(RerankError):
    """A worker process failed to score a chunk (its error is in the message) or died."""


def default_devices() -> list[str]:
    """Every CUDA device, else two CPU processes."""
    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu", "cpu"]


def _worker(model: CrossEncoder, device: str, threads: int | None, inbox: Any, outbox: Any) -> None:
    """Score chunks until the ``None`` sentinel arrives; report each chunk's scores (or error) by its id."""
    if threads is not None:
        torch.set_num_threads(threads)
    model.to(device)
    outbox.put(("ready", device, None))
    while True:
        task = inbox.get()
        if task is None:
            return
        call_id, chunk_id, pairs, options = task
        try:
            scores = model.predict(pairs, show_progress_bar=False, convert_to_tensor=True, **options)
            outbox.put((call_id, chunk_id, scores.cpu().numpy(), None))
        except Exception as error:  # reported to the caller, who raises it
            outbox.put((call_id, chunk_id, None, f"{type(error).__name__}: {error}"))


class PredictPool:
    """Worker processes holding a copy of one CrossEncoder each, on their own device.

    Args:
        model: the CrossEncoder (torch backend).
        devices: one worker per entry, e.g. ``["cpu", "cpu"]``; default: every GPU, else two CPU processes.
        num_threads: torch threads per CPU worker; default: the machine's cores divided among the CPU workers.
    """

    def __init__(self, model: CrossEncoder, devices: Sequence[str] | None = None, num_threads: int | None = None):
        if getattr(model, "backend", "torch") != "torch":
            raise ConfigError(f"A predict pool runs the torch backend; this model uses backend={model.backend!r}.")
        self.devices = list(devices) if devices else default_devices()
        cpu_workers = sum(str(device).startswith("cpu") for device in self.devices)
        if num_threads is None and cpu_workers:
            num_threads = max(1, (os.cpu_count() or 1) // cpu_workers)
        context = mp.get_context("spawn")
        self.inbox, self.outbox = context.Queue(), context.Queue()
        was_training = model.training
        model.eval()
        self.processes = []
        try:
            for device in self.devices:
                threads = num_threads if str(device).startswith("cpu") else None
                process = context.Process(
                    target=_worker, args=(model, str(device), threads, self.inbox, self.outbox), daemon=True
                )
                process.start()
                self.processes.append(process)
        finally:
            model.train(was_training)
        self._calls = 0
        self._finalizer = weakref.finalize(self, _stop, self.processes, self.inbox)
        self._await_ready()

    def _await_ready(self) -> None:
        for _ in self.processes:
            message = self._get(WORKER_START_TIMEOUT_S)
            if message[0] != "ready":
                self.close()
                raise WorkerError(f"A predict worker did not start: {message}")

    def _get(self, timeout: float | None = None) -> tuple:
        """The next message; a worker that died is reported instead of waiting forever."""
        while True:
            try:
                return self.outbox.get(timeout=timeout if timeout is not None else 5.0)
            except queue.Empty:
                dead = [p.pid for p in self.processes if not p.is_alive()]
                if dead or timeout is not None:
                    self.close()
                    raise WorkerError(f"Predict worker(s) {dead or 'all'} stopped without an answer.") from None

    def predict(
        self, pairs: Sequence[Sequence[str]], chunk_size: int | None, show_progress_bar: bool | None, options: dict
    ) -> torch.Tensor:
        """Scores of ``pairs`` in input order: shape (n,) for one output, (n, outputs) otherwise."""
        if not self._finalizer.alive:
            raise ConfigError("This predict pool is closed.")
        pairs = [(str(query), str(document)) for query, document in pairs]
        if not pairs:
            return torch.empty(0)
        if chunk_size is None:
            chunk_size = min(MAX_CHUNK_PAIRS, max(1, math.ceil(len(pairs) / (4 * len(self.processes)))))
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be positive; got {chunk_size}.")
        self._calls += 1
        call_id = self._calls
        starts = range(0, len(pairs), chunk_size)
        for chunk_id, start in enumerate(starts):
            self.inbox.put((call_id, chunk_id, pairs[start : start + chunk_size], options))
        results: dict[int, np.ndarray] = {}
        errors: list[str] = []
        show = bool(show_progress_bar) and len(starts) > 1
        with tqdm(total=len(starts), desc="Chunks", disable=not show) as progress:
            while len(results) + len(errors) < len(starts):  # every chunk answers, so none is left for the next call
                answer_call, chunk_id, scores, error = self._get()
                if answer_call != call_id:
                    continue
                if error is not None:
                    errors.append(f"chunk {chunk_id}: {error}")
                else:
                    results[chunk_id] = scores
                progress.update()
        if errors:
            raise WorkerError(f"Predict worker failed on {errors[0]}")
        return torch.from_numpy(np.concatenate([results[chunk_id] for chunk_id in range(len(starts))]))

    def close(self) -> None:
        """Stop the workers (waits for the chunks they are scoring)."""
        self._finalizer()

    def __enter__(self) -> PredictPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(processes: list, inbox: Any) -> None:
    for process in processes:
        if process.is_alive():
            inbox.put(None)
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


def predict_in_pool(
    model: CrossEncoder,
    pairs: Sequence[Sequence[str]],
    pool: PredictPool | None,
    devices: Sequence[str] | None,
    chunk_size: int | None,
    show_progress_bar: bool | None,
    options: dict[str, Any],
) -> torch.Tensor:
    """``predict`` in ``pool``, or in a pool started on ``devices`` for this one call."""
    if pool is not None:
        return pool.predict(pairs, chunk_size, show_progress_bar, options)
    with PredictPool(model, devices) as temporary:
        return temporary.predict(pairs, chunk_size, show_progress_bar, options)
