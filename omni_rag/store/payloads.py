"""What a point is made of on the way in (engine vectors, the stored payload) and on the way out
(the caller's payload without the store's own keys, stream vectors, hits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from omni_rag.store.engine import (
    FUSED,
    FUSED_STREAMS,
    EnginePoint,
    EngineRecord,
)
from omni_rag.store.errors import (
    StoreInputError,
)
from omni_rag.store.filters import (
    point_id,
    stream_set,
)
from omni_rag.store.fusion import unit
from omni_rag.store.models import (
    CALLER_PAYLOAD_KEYS,
    STREAMS,
    Hit,
    PayloadKey,
    Stream,
)


def engine_point(caller_id: str, streams: Mapping[str, np.ndarray], payload: dict[str, Any]) -> EnginePoint:
    """Stream vectors plus, for a point with audio and video, their unit vectors laid end to end."""
    vectors = dict(streams)
    if all(s in streams for s in FUSED_STREAMS):
        vectors[FUSED] = np.concatenate([unit(streams[s]) for s in FUSED_STREAMS]).astype(np.float32)
    return EnginePoint(id=point_id(caller_id), vectors=vectors, payload=payload)


def build_payload(
    index: int, item_id: str, vectors: Mapping[str, np.ndarray], given: Mapping[str, Any] | None
) -> dict:
    given = dict(given or {})
    unknown = set(given) - CALLER_PAYLOAD_KEYS
    if unknown:
        raise StoreInputError(
            f"unknown payload key(s) {sorted(unknown)}; allowed {sorted(CALLER_PAYLOAD_KEYS)} "
            "(put free-form data under 'metadata')",
            index=index,
        )
    metadata = given.get(PayloadKey.METADATA)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise StoreInputError("payload 'metadata' must be a dict", index=index)
    return {
        PayloadKey.ID: item_id,
        PayloadKey.SOURCE: given.get(PayloadKey.SOURCE),
        PayloadKey.MODALITIES: [s for s in STREAMS if s in vectors],
        PayloadKey.STREAM_SET: stream_set(vectors),
        PayloadKey.START_S: given.get(PayloadKey.START_S),
        PayloadKey.END_S: given.get(PayloadKey.END_S),
        PayloadKey.SEGMENT_INDEX: given.get(PayloadKey.SEGMENT_INDEX),
        PayloadKey.METADATA: dict(metadata or {}),
    }


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload as callers see it: without the store's own ``stream_set`` key."""
    return {k: v for k, v in payload.items() if k != PayloadKey.STREAM_SET}


def streams_of(record: EngineRecord) -> dict[str, np.ndarray]:
    return {s: v for s, v in record.vectors.items() if s in STREAMS}


def make_hit(record: EngineRecord, score: float, scores: np.ndarray, streams: Sequence[Stream]) -> Hit:
    return Hit(
        id=str(record.payload.get(PayloadKey.ID, record.id)),
        score=score,
        payload=public_payload(record.payload),
        stream_scores={s: float(scores[j]) for j, s in enumerate(streams) if not np.isnan(scores[j])},
    )
