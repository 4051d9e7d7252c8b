"""The seam between :class:`~omni_rag.store.OmniStore` and a Qdrant engine.

``OmniStore`` validates, plans queries and fuses scores; an engine only stores points and
answers primitive queries on one collection. Two engines implement :class:`Engine`:

* :class:`~omni_rag.store.edge_engine.EdgeEngine`: Qdrant Edge, Qdrant's segment / HNSW / WAL
  code running in-process; the embedded default (``path=`` and ``":memory:"``).
* :class:`~omni_rag.store.client_engine.ClientEngine`: qdrant-client, for a Qdrant server or
  cluster (``url=``), or any ``QdrantClient`` passed in (its ``":memory:"`` mode stands in for a
  server in tests).

Adding an engine is one module implementing this protocol.

Collection layout (the same on every engine): one cosine named vector per stream, plus one
dot-product ``fused`` vector holding the point's unit stream vectors laid end to end (zero blocks
for streams it lacks). A weighted mean of per-stream cosines is
then one inner product with the query repeated per block, so ``mean`` fusion is an index search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from qdrant_client import models

from omni_rag.store.models import STREAMS

#: The fused vector of a point that has both audio and video: its unit audio and video vectors
#: laid end to end. Only this pair gets one: it is what every recording omni-rag indexes holds (the
#: paper's "Audio+Video separately"), and Qdrant allocates every named vector for every point, so
#: a vector over all four streams would cost 32 KB a point at 2048 d and halve search speed.
FUSED = "fused_audio_video"
FUSED_STREAMS: tuple[str, str] = ("audio", "video")


@dataclass(frozen=True)
class VectorSpec:
    """One named vector of the collection."""

    name: str
    size: int
    distance: Literal["cosine", "dot"]


def collection_vectors(dim: int) -> list[VectorSpec]:
    """The named vectors an omni-rag collection of vector size ``dim`` has."""
    specs = [VectorSpec(s, dim, "cosine") for s in STREAMS]
    return [*specs, VectorSpec(FUSED, dim * len(FUSED_STREAMS), "dot")]


@dataclass(frozen=True)
class IndexInfo:
    """How much of a collection the search index (HNSW) covers, as the engine reports it.

    ``indexed_vectors`` counts vectors of every named vector (a point with audio and video has
    three: its two streams and their fused vector); ``segments`` is how many pieces the
    collection is stored in.
    """

    points: int
    indexed_vectors: int
    segments: int


@dataclass(frozen=True)
class EnginePoint:
    """A point as written: Qdrant id, every named vector it has, payload."""

    id: str
    vectors: dict[str, np.ndarray]
    payload: dict[str, Any]


@dataclass(frozen=True)
class EngineRecord:
    """A point as read back (vectors only those asked for; ``score`` only from queries)."""

    id: str
    payload: dict[str, Any]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    score: float | None = None


@dataclass(frozen=True)
class Nearest:
    """Nearest neighbours of ``vector`` on the named vector ``using`` (ids, scores, payload if asked).

    No vectors: exact per-stream scores are computed by the engine (see ``OmniStore``).
    """

    using: str
    vector: np.ndarray
    limit: int
    filter: models.Filter | None = None
    hnsw_ef: int | None = None
    exact: bool = False
    with_payload: bool = True


@dataclass(frozen=True)
class FusedQuery:
    """Qdrant's native rank fusion (``rrf``, optionally weighted, or ``dbsf``) of ``prefetch``."""

    fusion: Literal["rrf", "dbsf"]
    prefetch: tuple[Nearest, ...]
    limit: int
    weights: tuple[float, ...] | None = None
    filter: models.Filter | None = None


class Engine(Protocol):
    """Primitive operations on one collection; see the module docstring."""

    collection: str

    def exists(self) -> bool:
        """Whether the collection exists (another process may have created it)."""
        ...

    def vectors(self) -> dict[str, VectorSpec]:
        """The existing collection's named vectors."""
        ...

    def create(self, dim: int, metadata: Mapping[str, Any] | None) -> None:
        """Create the collection with :func:`collection_vectors` and the payload indexes."""
        ...

    def get_metadata(self) -> dict[str, Any]:
        """Collection-level metadata (``{}`` when none)."""
        ...

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Replace the collection-level metadata, durably."""
        ...

    def upsert(self, points: Sequence[EnginePoint]) -> None:
        """Insert or replace points; durable (or raising) when it returns."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Delete points by Qdrant id; unknown ids are ignored."""
        ...

    def retrieve(self, ids: Sequence[str], with_vectors: Sequence[str] | bool) -> list[EngineRecord]:
        """Points by Qdrant id, in no particular order; unknown ids are left out."""
        ...

    def count(self, filter: models.Filter | None = None) -> int:
        """Exact number of points (matching ``filter``)."""
        ...

    def stream_sets(self) -> Mapping[str, int]:
        """The ``stream_set`` values points have, each with its point count.

        Index queries for other combinations find nothing; the counts size the fused query's effort.
        """
        ...

    def nearest(self, requests: Sequence[Nearest]) -> list[list[EngineRecord]]:
        """One result list per request, best first, answered as one batch."""
        ...

    def fused(self, query: FusedQuery) -> list[EngineRecord]:
        """Native fusion of per-stream result lists, best first."""
        ...

    def scroll(
        self, offset: str | None, limit: int, filter: models.Filter | None = None, with_vectors: bool = True
    ) -> tuple[list[EngineRecord], str | None]:
        """A page of points (matching ``filter``) with payload and, if asked, all vectors; the next offset."""
        ...

    def collections(self) -> list[str]:
        """Names of the collections next to this one (for messages)."""
        ...

    def optimize(self, show_progress: bool = False) -> None:
        """Build indexes now (HNSW) for whatever is not indexed yet, so searches do not pay for it."""
        ...

    def keep_indexed(self, show_progress: bool = False) -> None:
        """After a write: index what was added once enough of it waits (a server does it itself)."""
        ...

    def index_info(self) -> IndexInfo:
        """Points, indexed vectors and segments, from the engine."""
        ...

    def drop(self) -> None:
        """Delete the collection and its data."""
        ...

    def close(self) -> None:
        """Release files, locks and connections."""
        ...
