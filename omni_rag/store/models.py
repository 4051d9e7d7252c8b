"""Data shapes shared by the store: stream names, payload keys and result types.

Streams are kept as separate named vectors because the paper scores a video's audio and
its frames separately and fuses the scores afterwards (FineVideo NDCG@10 0.5662 with late
fusion vs 0.4700 for one joint audio+video sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from omni_rag.modalities import STREAMS, Stream

__all__ = ["STREAMS", "FusionMode", "Hit", "HitGroup", "PayloadKey", "StoredPoint", "Stream"]

FusionMode = Literal["mean", "rrf", "dbsf", "max"]
"""How per-stream scores become one score: see :meth:`OmniStore.search`."""

FUSION_MODES: Final[tuple[FusionMode, ...]] = ("mean", "rrf", "dbsf", "max")


class PayloadKey:
    """Payload keys written on every point; usable in filters (``metadata.<key>`` for user data)."""

    ID: Final = "id"
    """The caller's string id (the Qdrant point id is a uuid5 of it)."""
    SOURCE: Final = "source"
    """Path or URI of the original media, or ``None``."""
    MODALITIES: Final = "modalities"
    """Streams the point has, in :data:`STREAMS` order."""
    STREAM_SET: Final = "stream_set"
    """The same streams as one keyword (``"audio+video"``), kept by the store for its own queries.

    One indexed value per combination lets a search learn which combinations exist (a facet) and
    filter on one exactly, where ``modalities`` conditions made the engine walk the whole graph
    for a combination no point has. Left out of the payloads the store returns.
    """
    START_S: Final = "start_s"
    """Segment start in seconds; ``None`` for whole items."""
    END_S: Final = "end_s"
    """Segment end in seconds; ``None`` for whole items."""
    SEGMENT_INDEX: Final = "segment_index"
    """Position of the segment in its source; ``None`` for whole items."""
    METADATA: Final = "metadata"
    """Free-form user dict."""


CALLER_PAYLOAD_KEYS: Final[frozenset[str]] = frozenset(
    {PayloadKey.SOURCE, PayloadKey.START_S, PayloadKey.END_S, PayloadKey.SEGMENT_INDEX, PayloadKey.METADATA}
)
"""Keys a caller may set in ``upsert(payloads=...)``; the store sets the others."""

INFO_METADATA_KEY: Final = "omni_rag"
"""Key of the collection metadata under which :meth:`OmniStore.set_info` keeps its dict."""


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: The caller's id given to ``upsert``.
        score: Fused score; its scale depends on the fusion mode (cosine for ``mean``/``max``,
            Qdrant's fused score for ``rrf``/``dbsf``), so compare scores only within one mode.
        payload: Stored payload (``id``, ``source``, ``modalities``, ``start_s``, ``end_s``,
            ``segment_index``, ``metadata``).
        stream_scores: Exact cosine between the query and each selected stream the point has;
            kept so callers can explain a hit or re-fuse without another query.
    """

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)
    stream_scores: dict[str, float] = field(default_factory=dict)

    @property
    def source(self) -> str | None:
        """Path or URI of the original media."""
        value = self.payload.get(PayloadKey.SOURCE)
        return None if value is None else str(value)


@dataclass(frozen=True)
class HitGroup:
    """Best hits of one group (by default one source: a video and its segments).

    Attributes:
        key: The group's value of the ``group_by`` payload field.
        hits: Best hits of the group, best first.
    """

    key: str | int
    hits: tuple[Hit, ...]

    @property
    def score(self) -> float:
        """Score of the group's best hit, by which groups are ranked."""
        return self.hits[0].score


@dataclass(frozen=True)
class StoredPoint:
    """A point as stored, returned by :meth:`OmniStore.get`.

    Attributes:
        id: The caller's id.
        payload: Stored payload.
        vectors: Stored vector per stream present. Qdrant keeps cosine vectors L2-normalised,
            so these are unit length even if the upserted ones were not.
    """

    id: str
    payload: dict[str, Any]
    vectors: dict[str, np.ndarray]
