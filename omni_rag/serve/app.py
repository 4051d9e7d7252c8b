"""The FastAPI application: the page, ``/api/health``, ``/api/search``, ``/media`` and ``/poster``.

Thin over the core: queries are batched by :class:`~omni_rag.serve.batching.QueryBatcher` and
answered by :class:`~omni_rag.serve.answers.Answerer`, which embeds with the retriever's embedder
(``omni-rag serve`` gives it one in a model process of its own) and searches with
:meth:`OmniRetriever.search_vectors`, the call ``omni-rag search`` ends in, so the API's hits are
the CLI's hits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic_core import to_json

from omni_rag.retriever import OmniRetriever
from omni_rag.serve.answers import Answer, Answerer, Outcome, SearchJob
from omni_rag.serve.auth import authorized
from omni_rag.serve.batching import QueryBatcher
from omni_rag.serve.media import MediaSource, PosterCache
from omni_rag.serve.model_process import EmbedderProcess, ModelProcessError
from omni_rag.serve.query import (
    QueryError,
    SearchRequest,
    ServeQuery,
    UploadTooLarge,
    limited_receive,
    multipart_query,
    parse_json,
)

STATIC = Path(__file__).resolve().parent / "static"
#: Default upload limit, in MiB (``--max-upload-mb``).
DEFAULT_MAX_UPLOAD_MB = 200
#: What every refused ``/media`` or ``/poster`` request gets: nothing about why.
NOT_FOUND = {"detail": "not found"}


@dataclass
class ServeConfig:
    """How the server behaves: its key (``None``: no key asked), upload limit and batching."""

    api_key: str | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_batch: int = 64

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


@dataclass
class ServeState:
    """What the routes share: the answerer, the batcher and the poster cache."""

    answerer: Answerer
    config: ServeConfig
    batcher: QueryBatcher[SearchJob, Outcome]
    posters: PosterCache = field(default_factory=PosterCache)

    def model_down(self) -> str | None:
        """Why the model cannot embed (its process stopped), or ``None``."""
        embedder = self.answerer.retriever.embedder
        if isinstance(embedder, EmbedderProcess) and not embedder.is_alive():
            return "the model process stopped; restart omni-rag serve"
        return None

    async def search(self, query: ServeQuery) -> Outcome:
        """The query's answer, embedded and searched in the next micro-batch."""
        streams = tuple(query.streams) if query.streams is not None else None
        return await self.batcher.submit(SearchJob(query.content, query.k, query.fusion, streams))


def create_app(retriever: OmniRetriever, config: ServeConfig | None = None) -> FastAPI:
    """The app for one collection and one model (the caller has checked they match)."""
    config = config or ServeConfig()
    answerer = Answerer(retriever, config.max_batch)
    batcher: QueryBatcher[SearchJob, Outcome] = QueryBatcher(
        answerer.embed, answerer.search, max_batch=config.max_batch
    )
    state = ServeState(answerer, config, batcher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.batcher.close()

    app = FastAPI(
        title="omni-rag",
        summary=f"Search the {answerer.collection!r} collection with text, images, audio or video.",
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
    async def health() -> Response:
        """The collection, its point count and the model: what the page shows in its header."""
        down = state.model_down()
        if down is not None:
            return JSONResponse({"status": "down", "detail": down}, status_code=503)
        points = await asyncio.to_thread(state.answerer.count)
        return _json(
            {
                "status": "ok",
                "collection": state.answerer.collection,
                "points": points,
                "model": state.answerer.model_id,
                "batches": {"passes": state.batcher.stats.passes, "queries": state.batcher.stats.queries},
            }
        )

    @app.post(
        "/api/search",
        dependencies=guarded,
        openapi_extra={"requestBody": _search_body()},
        responses={400: {"description": "bad query"}, 413: {"description": "upload over the limit"}},
    )
    async def search(request: Request) -> Response:
        """Hits as ``omni-rag search --json`` gives them, plus ``media_url`` (and ``poster_url``)."""
        try:
            outcome = await _search(request, state)
        except QueryError as error:
            return JSONResponse({"detail": error.message}, status_code=error.status)
        except ModelProcessError as error:
            return JSONResponse({"detail": str(error)}, status_code=503)
        if isinstance(outcome, Answer):
            return Response(outcome.body, media_type="application/json")
        return JSONResponse({"detail": outcome.detail}, status_code=outcome.status)


def _json(content: Any) -> Response:
    """JSON written by pydantic-core in Rust (Starlette's ``json.dumps`` costs the GIL more)."""
    return Response(to_json(content), media_type="application/json")


async def _search(request: Request, state: ServeState) -> Outcome:
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
        found = await asyncio.to_thread(state.answerer.media, point_id)
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
