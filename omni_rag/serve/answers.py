"""The server's work on a batch of queries: embed them in one pass, search, write each answer's JSON.

:class:`Answerer` gives the batcher two stages, each on a thread of its own: :meth:`~Answerer.embed`
(in this process, or in ``omni-rag serve``'s model process,
:class:`~omni_rag.serve.model_process.EmbedderProcess`) and :meth:`~Answerer.search`, so one batch
is searched while the next is embedded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from pydantic_core import to_json

from omni_rag.cli.search import query_error_message
from omni_rag.content import Content
from omni_rag.errors import OmniInputError
from omni_rag.retriever import OmniRetriever
from omni_rag.serve.batching import embed_each, per_key
from omni_rag.serve.media import MediaSource, SourceCache, point_media
from omni_rag.serve.query import hits_payload
from omni_rag.store import FusionMode

logger = logging.getLogger(__name__)


#: ``k``, fusion and streams: what queries searched in one store call share.
SearchOptions = tuple[int, FusionMode, tuple[str, ...] | None]


@dataclass(frozen=True)
class SearchJob:
    """One checked query and how to search with it."""

    content: Content
    k: int
    fusion: FusionMode
    streams: tuple[str, ...] | None

    @property
    def options(self) -> SearchOptions:
        """Jobs with equal options are searched in one store call."""
        return (self.k, self.fusion, self.streams)


@dataclass(frozen=True)
class Answer:
    """A search's ``{"hits": [...]}`` as JSON bytes."""

    body: bytes


@dataclass(frozen=True)
class Refusal:
    """A query that could not be answered: the HTTP status and the reason for the client."""

    status: int
    detail: str


Outcome = Answer | Refusal


@dataclass(frozen=True)
class Embedded:
    """A job with its query vector, or why its query could not be embedded."""

    job: SearchJob
    vector: np.ndarray | OmniInputError


class Answerer:
    """Answers batches of search jobs with one retriever; its store calls never overlap.

    Args:
        retriever: The model and the collection.
        max_batch: Most queries per forward pass.
    """

    def __init__(self, retriever: OmniRetriever, max_batch: int = 64) -> None:
        self.retriever = retriever
        self.max_batch = max_batch
        self.collection = retriever.store.collection
        self.model_id = str(retriever.embedder.model_id)
        self.sources = SourceCache()
        self._store_lock = threading.Lock()

    def answer(self, jobs: list[SearchJob]) -> list[Outcome]:
        """One outcome per job, in order: a bad query is refused alone, the rest are answered."""
        return self.search(self.embed(jobs))

    def embed(self, jobs: list[SearchJob]) -> list[Embedded]:
        """Stage one: the jobs' query vectors in one forward pass (an error for a bad query)."""
        vectors = embed_each(self.retriever.embedder, [job.content for job in jobs], self.max_batch)
        return [Embedded(job, vector) for job, vector in zip(jobs, vectors, strict=True)]

    def search(self, embedded: list[Embedded]) -> list[Outcome]:
        """Stage two: one store call per set of search options, then each answer's JSON."""
        ok = [
            (n, e.job.options, e.vector) for n, e in enumerate(embedded) if isinstance(e.vector, np.ndarray)
        ]
        found = per_key([(options, vector) for _, options, vector in ok], self._search)
        results: dict[int, bytes | Exception] = dict(zip((n for n, _, _ in ok), found, strict=True))
        results.update((n, e.vector) for n, e in enumerate(embedded) if isinstance(e.vector, OmniInputError))
        return [_outcome(results[n]) for n in range(len(embedded))]

    def count(self) -> int:
        with self._store_lock:
            return self.retriever.store.count()

    def media(self, point_id: str) -> MediaSource | None:
        """The servable file of a stored point (``None``: unknown, not a file, or refused)."""
        with self._store_lock:
            return point_media(self.retriever.store, point_id)

    def _search(self, options: SearchOptions, vectors: list[np.ndarray]) -> list[bytes]:
        k, fusion, streams = options
        with self._store_lock:
            found = self.retriever.search_vectors(vectors, k=k, streams=streams, fusion=fusion)
        return [to_json({"hits": hits_payload(hits, self.sources)}) for hits in found]


def _outcome(result: bytes | Exception) -> Outcome:
    if isinstance(result, bytes):
        return Answer(result)
    if isinstance(result, OmniInputError):
        return Refusal(400, query_error_message(result))
    logger.error("search failed", exc_info=result)
    return Refusal(500, f"the search failed: {type(result).__name__}: {result}")
