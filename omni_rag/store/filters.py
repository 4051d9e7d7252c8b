"""Point ids, payload filters and collection names: the parts of a query no engine owns."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qdrant_client import models

from omni_rag.store.errors import CollectionNameError, StoreInputError
from omni_rag.store.models import STREAMS, PayloadKey

POINT_ID_NAMESPACE = uuid.UUID("8430158d-1408-46c4-8dc2-d85aa8ed2b27")
"""Namespace of the uuid5 that maps caller ids to point ids; fixed forever so re-upserts replace."""

#: What a collection name may hold: it becomes a folder name on the embedded engine and a URL
#: path segment on a server, so path separators and control characters are refused up front.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")

FilterLike = models.Filter | Mapping[str, Any]


def point_id(caller_id: str) -> str:
    """Qdrant point id of a caller id; deterministic so upserting an id again replaces the point."""
    return str(uuid.uuid5(POINT_ID_NAMESPACE, caller_id))


def check_collection_name(name: object) -> str:
    """Refuse a collection name before anything is opened or embedded.

    Raises:
        CollectionNameError: Naming the name and what is allowed.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise CollectionNameError(
            f"invalid collection name {name!r}: use 1-255 letters, digits, '_', '-' or '.', "
            "not starting with '.' or '-'"
        )
    return name


def to_filter(filter: FilterLike | None) -> models.Filter | None:
    """Turn ``{"source": "a.mp4", "metadata.lang": "en"}`` into a Qdrant filter (all must match).

    A list value matches any of its items (for ``modalities`` that is "has any of these streams");
    ``None`` matches a null or missing field.
    """
    if filter is None or isinstance(filter, models.Filter):
        return filter
    if not isinstance(filter, Mapping):
        raise StoreInputError(f"filter must be a qdrant Filter or a mapping, got {type(filter).__name__}")
    must: list[models.Condition] = []
    for key, value in filter.items():
        if value is None:
            must.append(models.IsNullCondition(is_null=models.PayloadField(key=key)))
        elif isinstance(value, (str, bool, int)):
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
        elif isinstance(value, float):
            must.append(models.FieldCondition(key=key, range=models.Range(gte=value, lte=value)))
        elif isinstance(value, (list, tuple, set, frozenset)) and all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
        ):
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(value))))
        else:
            raise StoreInputError(f"filter value for '{key}' must be str, int, bool, float, None or a list")
    return models.Filter(must=must)


def all_of(*filters: models.Filter | None) -> models.Filter | None:
    """The conjunction of the given filters (``None`` entries ignored)."""
    present: list[models.Condition] = [f for f in filters if f is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else models.Filter(must=present)  # type: ignore[return-value]


def stream_set(streams: Iterable[str]) -> str:
    """The ``stream_set`` payload value of a point with ``streams`` (:data:`STREAMS` order, ``+``)."""
    have = set(streams)
    return "+".join(s for s in STREAMS if s in have)


def streams_in_set(value: str) -> frozenset[str]:
    """The streams a ``stream_set`` payload value names (the inverse of :func:`stream_set`)."""
    return frozenset(value.split("+"))


def in_stream_sets(values: Sequence[str]) -> models.Filter:
    """Points whose streams are exactly one of ``values`` (``stream_set`` payload values).

    One shared object per combination (never modify it): a batch of queries then hands the engine
    the same filter, which it translates once for all of them.
    """
    return _in_stream_sets(tuple(values))


@functools.lru_cache(maxsize=256)
def _in_stream_sets(values: tuple[str, ...]) -> models.Filter:
    match = models.MatchAny(any=list(values))  # type: ignore[arg-type]
    return models.Filter(must=[models.FieldCondition(key=PayloadKey.STREAM_SET, match=match)])


def none_of(key: str, values: Sequence[str | int]) -> models.Filter | None:
    """Points whose ``key`` is none of ``values`` (used to page past groups already full)."""
    if not values:
        return None
    match = models.MatchAny(any=list(values))  # type: ignore[arg-type]
    return models.Filter(must_not=[models.FieldCondition(key=key, match=match)])
