"""Reading a search request (JSON or multipart with media files) and writing its hits as JSON.

Queries are checked with the CLI's own functions and refused in the CLI's own words; hits are
``omni-rag search --json`` entries (:func:`omni_rag.cli.render.hits_to_json`) plus the URLs the
page needs to show and play them.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from omni_rag.cli.render import hits_to_json
from omni_rag.cli.search import query_file_problem
from omni_rag.content import Content
from omni_rag.hits import hit_text
from omni_rag.serve.media import SourceCache, hit_source_file
from omni_rag.store import STREAMS, FusionMode, Hit

#: The media fields a multipart request may carry, as in ``omni-rag search --image/--audio/--video``.
MEDIA_FIELDS = ("image", "audio", "video")
#: Most results one request may ask for.
MAX_K = 1000


class SearchRequest(BaseModel):
    """The JSON body of ``POST /api/search`` (multipart forms carry the same fields, plus files)."""

    text: str | None = Field(None, description="query text")
    k: int = Field(10, ge=1, le=MAX_K, description="number of results")
    fusion: Literal["mean", "rrf", "dbsf", "max"] = Field("mean", description="how stream scores combine")
    streams: list[Literal["text", "image", "audio", "video"]] | None = Field(
        None, description="streams searched (default: all)"
    )


class QueryError(Exception):
    """A request that cannot be served as given: its HTTP status and the reason, for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServeQuery:
    """One checked query: what to embed and how to search."""

    content: Content
    k: int
    fusion: FusionMode
    streams: list[str] | None


def parse_json(body: Any) -> ServeQuery:
    """A JSON body checked into a query (400 naming the field otherwise)."""
    if not isinstance(body, Mapping):
        raise QueryError(400, "the body must be a JSON object with 'text' (and 'k', 'fusion', 'streams')")
    request = _validated(dict(body))
    if request.text is None:
        raise QueryError(400, "give a query: 'text', or upload an image/audio/video file as multipart")
    return _query(request, Content(text=_text(request.text)))


def _validated(fields: dict[str, Any]) -> SearchRequest:
    try:
        return SearchRequest.model_validate(fields)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "body"
        raise QueryError(400, f"{where}: {problem['msg']}") from error


def _text(text: str) -> str:
    if not text.strip():
        raise QueryError(400, "the query text is empty")
    return text


def _query(request: SearchRequest, content: Content) -> ServeQuery:
    streams = [str(s) for s in request.streams] if request.streams is not None else None
    if streams is not None and not streams:
        raise QueryError(400, f"streams: give at least one of {', '.join(STREAMS)}")
    return ServeQuery(content, request.k, request.fusion, streams)


def form_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The non-file fields of a multipart form, ``streams`` given as ``audio,video``."""
    fields: dict[str, Any] = {}
    for name in ("text", "k", "fusion"):
        value = form.get(name)
        if isinstance(value, str) and value != "":
            fields[name] = value
    streams = form.get("streams")
    if isinstance(streams, str) and streams.strip():
        fields["streams"] = [s.strip() for s in streams.split(",") if s.strip()]
    return fields


@asynccontextmanager
async def multipart_query(form: Mapping[str, Any], max_bytes: int) -> AsyncIterator[ServeQuery]:
    """A multipart form as a query; uploaded files live in a temporary folder until the block ends."""
    request = _validated(form_fields(form))
    folder = Path(tempfile.mkdtemp(prefix="omni-rag-upload-"))
    try:
        media = {
            name: await _save(form[name], folder / name, max_bytes)
            for name in MEDIA_FIELDS
            if _file(form, name)
        }
        if request.text is None and not media:
            raise QueryError(400, "give a query: 'text' and/or an image, audio or video file")
        text = _text(request.text) if request.text is not None else None
        yield _query(
            request,
            Content(text=text, image=media.get("image"), audio=media.get("audio"), video=media.get("video")),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _file(form: Mapping[str, Any], name: str) -> bool:
    value = form.get(name)
    return isinstance(value, UploadFile) and bool(value.filename)


async def _save(upload: UploadFile, folder: Path, max_bytes: int) -> str:
    """Write the upload under its own (cleaned) name and check it as the CLI checks a query file."""
    if upload.size is not None and upload.size > max_bytes:
        raise QueryError(413, f"the {folder.name} upload is over the {max_bytes // 2**20} MB limit")
    folder.mkdir()
    name = re.sub(r"[^\w.\-]+", "_", Path(upload.filename or "upload").name).lstrip(".") or "upload"
    path = folder / name
    with path.open("wb") as out:
        while chunk := await upload.read(2**20):
            out.write(chunk)
    problem = query_file_problem(folder.name, str(path))
    if problem is not None:
        shown = problem.replace(str(path), upload.filename or name)
        raise QueryError(400, f"{folder.name} {upload.filename}: {shown}")
    return str(path)


def hit_to_json(entry: dict[str, Any], hit: Hit, paths: SourceCache | None = None) -> dict[str, Any]:
    """One ``--json`` entry plus ``media_url`` (and ``poster_url`` for video, ``text`` for text hits)."""
    source = hit_source_file(hit, paths)
    extra: dict[str, Any] = {"kind": source.modality if source is not None else "text", "media_url": None}
    if source is not None:
        extra["media_url"] = f"/media/{quote(hit.id, safe='')}"
        if source.modality == "video":
            extra["poster_url"] = f"/poster/{quote(hit.id, safe='')}"
    elif hit.source is None:
        extra["text"] = hit_text(hit)
    return {**entry, **extra}


def hits_payload(hits: list[Hit], paths: SourceCache | None = None) -> list[dict[str, Any]]:
    """``{"hits": [...]}``'s list: the CLI's JSON for each hit, with the page's URLs added."""
    return [hit_to_json(entry, hit, paths) for entry, hit in zip(hits_to_json(hits), hits, strict=True)]


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class UploadTooLarge(Exception):
    """The request body passed the upload limit while it was being read."""


def limited_receive(receive: Receive, max_bytes: int) -> Receive:
    """``receive`` that stops a request body at ``max_bytes`` (for bodies sent without a length)."""
    seen = 0

    async def wrapped() -> MutableMapping[str, Any]:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > max_bytes:
            raise UploadTooLarge
        return message

    return wrapped
