"""`rerank serve-model --api rerank`: `POST /rerank {query, documents, top_n}` -> `[{index, relevance_score}]`.

The request and result shape of hosted rerank APIs and of Hugging Face's text-embeddings-inference, so retrieval
frameworks that already call those can call the champion. FastAPI validates requests (a malformed one gets a 422
naming the field, never a traceback) and uvicorn serves them; concurrent requests are scored in micro-batches
behind a bounded queue (:mod:`rerank_app.request_batching`, 503 when full). Every response carries the served registry
version in its headers (``X-Model-Name``, ``X-Model-Version``); ``GET /health`` reports it too.

Scores are what `rerank predict` gives for the same pairs: the model folder of the registered version, loaded with
:func:`rerank_lib.load_reranker` (fused when saved with a score fusion).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rerank_app.champion import ServedVersion, download_model_folder
from rerank_app.request_batching import MicroBatcher, Pair, QueueFullError

logger = logging.getLogger(__name__)

MAX_DOCUMENTS = 1000  # per request: larger lists are split by the caller, so one request cannot hold the model long
RETRY_AFTER_SECONDS = "1"


class RerankRequest(BaseModel):
    """One query and the documents to order for it (``model`` is accepted, as hosted APIs send it, and ignored)."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    documents: list[str] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    model: str | None = None


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: str | None = None


@dataclass(frozen=True)
class BatchSettings:
    max_batch_pairs: int = 64
    max_queued: int = 32
    workers: int = 1  # batches scored at once, each in its own thread


def ranked(scores: Sequence[float], request: RerankRequest) -> list[RerankResult]:
    """Results best first (ties keep the documents' order), cut to ``top_n``."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[: request.top_n]
    return [
        RerankResult(
            index=i,
            relevance_score=float(scores[i]),
            document=request.documents[i] if request.return_documents else None,
        )
        for i in order
    ]


def create_app(
    score: Callable[[list[Pair]], Sequence[float]], served: ServedVersion, settings: BatchSettings | None = None
) -> FastAPI:
    """The API around a synchronous ``score(pairs) -> scores`` (a loaded reranker's predict)."""
    settings = settings or BatchSettings()
    batcher = MicroBatcher(score, settings.max_batch_pairs, settings.max_queued, settings.workers)
    version_headers = {"X-Model-Name": served.name, "X-Model-Version": served.version}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="rerank", lifespan=lifespan)
    app.state.batcher = batcher

    @app.middleware("http")
    async def name_the_version(request: Request, call_next: Callable) -> Any:
        response = await call_next(request)
        response.headers.update(version_headers)
        return response

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": served.name,
            "version": served.version,
            "queued": batcher.queued,
            "workers": batcher.workers,
        }

    @app.post("/rerank", response_model=list[RerankResult], response_model_exclude_none=True)
    async def rerank(request: RerankRequest) -> Any:
        pairs = [(request.query, document) for document in request.documents]
        try:
            scores = await batcher.submit(pairs)
        except QueueFullError as error:
            return JSONResponse(
                {"detail": f"Server busy: {error}; retry later."},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_SECONDS, **version_headers},
            )
        return ranked(scores, request)

    @app.exception_handler(Exception)
    async def scoring_failed(request: Request, error: Exception) -> JSONResponse:
        logger.exception("Scoring failed for %s", request.url.path)
        return JSONResponse({"detail": "Scoring failed; see the server log."}, 500, headers=version_headers)

    return app


def serve_rerank_api(
    served: ServedVersion, host: str, port: int, options: dict[str, Any], settings: BatchSettings
) -> None:
    """Download the version, load it with the chosen backend, and serve the API with uvicorn until interrupted."""
    import torch
    import uvicorn

    from rerank_lib import load_reranker

    if options.get("num_threads"):  # process-wide: a fused model's bi-encoder runs with it too
        torch.set_num_threads(options["num_threads"])
    with tempfile.TemporaryDirectory(prefix="rerank-serve-") as workdir:
        folder = download_model_folder(served, Path(workdir))
        model = load_reranker(folder, device="cpu", **options)

        def score(pairs: list[Pair]) -> Sequence[float]:
            return model.predict(pairs, show_progress_bar=False)

        app = create_app(score, served, settings)
        logger.info("Serving %s: POST http://%s:%d/rerank", served.describe(), host, port)
        uvicorn.run(app, host=host, port=port, log_level="info")
