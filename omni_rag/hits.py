"""One translation of search hits for every front end: text, media reference, flat metadata.

The LangChain and LlamaIndex adapters and the CLI all present a :class:`~omni_rag.store.Hit`;
they call these functions (as llama-index shares ``node_to_metadata_dict`` in its core) rather
than each reading the payload its own way.
"""

from __future__ import annotations

from typing import Any

from omni_rag.content import Content
from omni_rag.modalities import SOURCE_ORDER
from omni_rag.store.models import Hit, StoredPoint


def stored_hit(point: StoredPoint) -> Hit:
    """A point read by id as a hit, so reads and searches are translated by the same functions.

    It was not scored: ``score`` is NaN and ``stream_scores`` empty.
    """
    return Hit(id=point.id, score=float("nan"), payload=dict(point.payload))


def hit_media(hit: Hit) -> dict[str, str]:
    """The media fields a hit's source stands for, e.g. ``{"video": path, "audio": path}``.

    A caption stored with its picture is one ``text`` stream whose source is the image.
    """
    source = hit.source
    if source is None:
        return {}
    modalities = set(hit.payload.get("modalities") or [])
    return {name: source for name in SOURCE_ORDER if name in modalities} or {"image": source}


def hit_modality(hit: Hit) -> str:
    """The hit's main modality: ``video``, ``audio``, ``image`` or ``text``."""
    media = hit_media(hit)
    return next((name for name in SOURCE_ORDER if name in media), "text")


def hit_text(hit: Hit) -> str:
    """The item's text, or a short description of its media (``[video: talk.mp4] [12.0s-24.0s]``)."""
    text = (hit.payload.get("metadata") or {}).get("text")
    if text is not None:
        return str(text)
    media = hit_media(hit)
    if not media:
        return hit.id
    described = Content(
        image=media.get("image"),
        audio=media.get("audio"),
        video=media.get("video"),
        start_s=hit.payload.get("start_s"),
        end_s=hit.payload.get("end_s"),
    ).describe()
    return described or hit.id


#: The keys :func:`hit_metadata` adds to the user's metadata.
STORE_FIELDS = (
    "id",
    "source",
    "modality",
    "modalities",
    "score",
    "stream_scores",
    "start_s",
    "end_s",
    "segment_index",
)


def hit_origin(hit: Hit) -> str:
    """Where a hit came from, for people: its media source, else the indexed file, else its id."""
    metadata = hit.payload.get("metadata") or {}
    return str(hit.source or metadata.get("path") or metadata.get("name") or hit.id)


def hit_user_metadata(hit: Hit) -> dict[str, Any]:
    """The metadata the caller stored, as given: the item's ``text`` left out (it is the content)."""
    return {k: v for k, v in (hit.payload.get("metadata") or {}).items() if k != "text"}


#: The keys :func:`hit_media_fields` gives a media point.
MEDIA_FIELDS = ("source", "modality", "modalities", "start_s", "end_s", "segment_index")


def hit_media_fields(hit: Hit) -> dict[str, Any]:
    """Where a media point's content is (source, modality, time range); ``{}`` for a text point.

    Framework stores add these to the caller's metadata only for media, so a text document reads
    back exactly as it was written.
    """
    if hit.source is None:
        return {}
    payload = hit.payload
    return {
        "source": hit.source,
        "modality": hit_modality(hit),
        "modalities": list(payload.get("modalities") or []),
        "start_s": payload.get("start_s"),
        "end_s": payload.get("end_s"),
        "segment_index": payload.get("segment_index"),
    }


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """Flat metadata: the user's keys (``text`` left out) plus the store's fields and scores."""
    payload = hit.payload
    return {
        **hit_user_metadata(hit),
        "id": hit.id,
        "source": hit.source,
        "modality": hit_modality(hit),
        "modalities": list(payload.get("modalities") or []),
        "score": hit.score,
        "stream_scores": dict(hit.stream_scores),
        "start_s": payload.get("start_s"),
        "end_s": payload.get("end_s"),
        "segment_index": payload.get("segment_index"),
    }
