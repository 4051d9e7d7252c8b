"""The FastAPI application: the page, ``/api/health``, ``/api/search``, ``/media`` and ``/poster``.

Thin over the core: queries are embedded by :class:`~omni_rag.serve.batching.QueryBatcher`
(one model, micro-batches) and searched with :meth:`OmniRetriever.search_vector`, the same call
``omni-rag search`` ends in, so the API's hits are the CLI's hits. Store calls take one lock, so
the embedded Qdrant store is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic_core import to_json

from omni_rag.cli.search import query_error_message
from omni_rag.errors import OmniInputError
from omni_rag.retriever import OmniRetriever
from omni_rag.serve.auth import authorized
from omni_rag.serve.batching import QueryBatcher
from omni_rag.serve.media import MediaSource, PosterCache, SourceCache, point_media
from omni_rag.serve.query import (
    QueryError,
    SearchRequest,
    ServeQuery,
    UploadTooLarge,
    hits_payload,
    limited_receive,
    multipart_query,
    parse_json,
)

STATIC = Path(__file__).resolve().parent / "static"
#: Default upload limit, in MiB (``--max-upload-mb``).
DEFAULT_MAX_UPLOAD_MB = 200
#: What every refused ``/media`` or ``/poster`` request gets: nothing about why.
NOT_FOUND = {"detail": "not found"}

T = TypeVar("T")


@dataclass
class ServeConfig:
    """How the server behaves: its key (``None``: no key asked), upload limit and batching."""

    api_key: str | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_batch: int = 64
    max_wait_ms: float = 2.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


@dataclass
class ServeState:
    """What the routes share: the retriever, the batcher, the store's lock and the poster cache."""

    retriever: OmniRetriever
    config: ServeConfig
    batcher: QueryBatcher
    posters: PosterCache = field(default_factory=PosterCache)
    sources: SourceCache = field(default_factory=SourceCache)
    store_lock: threading.Lock = field(default_factory=threading.Lock)

    async def on_store(self, function: Callable[..., T], *args: Any) -> T:
        """Run a store call in a worker thread, never two at once."""
        return await asyncio.to_thread(self._locked, function, *args)

    def _locked(self, function: Callable[..., T], *args: Any) -> T:
        with self.store_lock:
            return function(*args)

    async def search(self, query: ServeQuery) -> list[dict[str, Any]]:
        """Embed in the next micro-batch; search (one store call for the batch's queries with the
        same options) and write the JSON on the batch's thread."""

        def then(vectors: list[np.ndarray]) -> list[list[dict[str, Any]]]:
            found = self._locked(
                lambda: self.retriever.search_vectors(
                    vectors, k=query.k, streams=query.streams, fusion=query.fusion
                )
            )
            return [hits_payload(hits, self.sources) for hits in found]

        key = (query.k, query.fusion, tuple(query.streams) if query.streams is not None else None)
        return await self.batcher.run(query.content, then, key)


def create_app(retriever: OmniRetriever, config: ServeConfig | None = None) -> FastAPI:
    """The app for one collection and one model (the caller has checked they match)."""
    config = config or ServeConfig()
    state = ServeState(
        retriever,
        config,
        QueryBatcher(retriever.embedder, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.batcher.close()

    app = FastAPI(
        title="omni-rag",
        summary=f"Search the {retriever.store.collection!r} collection with text, images, audio or video.",
        lifespan=lifespan,
    )
    app.state.omni = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _page_routes(app)
    _api_routes(app, state)
    _media_routes(app, state)
    return app


async def _require_key(request: Request) -> None:
    """401 unless the request carries the server's key (when it has one)."""
    state: ServeState = request.app.state.omni
    if not authorized(request, state.config.api_key):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def _page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def _api_routes(app: FastAPI, state: ServeState) -> None:
    guarded = [Depends(_require_key)]

    @app.get("/api/health", dependencies=guarded)
    async def health() -> dict[str, Any]:
        """The collection, its point count and the model: what the page shows in its header."""
        points = await state.on_store(state.retriever.store.count)
        return {
            "status": "ok",
            "collection": state.retriever.store.collection,
            "points": points,
            "model": state.retriever.embedder.model_id,
            "batches": {"passes": state.batcher.stats.passes, "queries": state.batcher.stats.queries},
        }

    @app.post(
        "/api/search",
        dependencies=guarded,
        openapi_extra={"requestBody": _search_body()},
        responses={400: {"description": "bad query"}, 413: {"description": "upload over the limit"}},
    )
    async def search(request: Request) -> Response:
        """Hits as ``omni-rag search --json`` gives them, plus ``media_url`` (and ``poster_url``)."""
        try:
            hits = await _search(request, state)
        except QueryError as error:
            return JSONResponse({"detail": error.message}, status_code=error.status)
        except OmniInputError as error:
            return JSONResponse({"detail": query_error_message(error)}, status_code=400)
        return _json({"hits": hits})


def _json(content: Any) -> Response:
    """JSON written by pydantic-core in Rust: Starlette's ``json.dumps`` held the GIL 6 % of a loaded
    server's time, and the GIL is what the model thread and the requests share."""
    return Response(to_json(content), media_type="application/json")


async def _search(request: Request, state: ServeState) -> list[dict[str, Any]]:
    content_type = request.headers.get("content-type", "")
    limit = state.config.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise QueryError(413, f"the request is over the {state.config.max_upload_mb:g} MB upload limit")
    if content_type.startswith("multipart/form-data"):
        limited = Request(request.scope, limited_receive(request.receive, limit))
        try:
            async with (
                limited.form(max_files=3, max_fields=10) as form,
                multipart_query(form, limit) as query,
            ):
                return await state.search(query)
        except UploadTooLarge as error:
            raise QueryError(
                413, f"the request is over the {state.config.max_upload_mb:g} MB upload limit"
            ) from error
    try:
        body = json.loads(await request.body())
    except ValueError as error:
        raise QueryError(400, f"the body is not JSON ({error}); send JSON or a multipart form") from error
    return await state.search(parse_json(body))


def _search_body() -> dict[str, Any]:
    """The OpenAPI description of the two request bodies ``/api/search`` accepts."""
    form = {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "k": {"type": "integer", "default": 10},
            "fusion": {"type": "string", "enum": ["mean", "rrf", "dbsf", "max"]},
            "streams": {"type": "string", "description": "comma list, e.g. audio,video"},
            **{name: {"type": "string", "format": "binary"} for name in ("image", "audio", "video")},
        },
    }
    return {
        "content": {
            "application/json": {"schema": SearchRequest.model_json_schema()},
            "multipart/form-data": {"schema": form},
        }
    }


def _media_routes(app: FastAPI, state: ServeState) -> None:
    guarded = [Depends(_require_key)]

    async def lookup(point_id: str) -> MediaSource:
        found = await state.on_store(point_media, state.retriever.store, point_id)
        if found is None:
            raise HTTPException(404, NOT_FOUND["detail"])
        return found

    @app.get("/media/{point_id}", dependencies=guarded, response_class=FileResponse)
    async def media(point_id: str) -> Response:
        """The point's source file (HTTP Range supported, so players can seek)."""
        source = await lookup(point_id)
        return FileResponse(source.path, headers={"Cache-Control": "private, max-age=60"})

    @app.get("/poster/{point_id}", dependencies=guarded)
    async def poster(point_id: str) -> Response:
        """A JPEG frame of a video point at its ``start_s`` (extracted once, then cached)."""
        source = await lookup(point_id)
        if source.modality != "video":
            raise HTTPException(404, NOT_FOUND["detail"])
        frame = await asyncio.to_thread(state.posters.poster, source.path, source.start_s or 0.0)
        if frame is None:
            raise HTTPException(404, NOT_FOUND["detail"])
        return Response(frame, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
