"""Errors raised by :mod:`omni_rag.store`.

They subclass :class:`~omni_rag.errors.OmniError` so a caller can catch everything omni-rag raises
on purpose in one place, and :class:`ValueError` where the caller passed a bad value, so code
written against plain Python conventions keeps working.
"""

from __future__ import annotations

from omni_rag.errors import OmniError


class StoreError(OmniError):
    """Base class of every error the store raises on purpose."""


class StoreInputError(StoreError, ValueError):
    """A value passed to the store is unusable.

    Attributes:
        reason: Human-readable cause.
        index: Position of the item in the caller's batch, ``None`` for queries and arguments.
        stream: The stream (``text``, ``image``, ``audio``, ``video``) at fault, if any.
    """

    def __init__(self, reason: str, *, index: int | None = None, stream: str | None = None) -> None:
        self.reason = reason
        self.index = index
        self.stream = stream
        where = []
        if index is not None:
            where.append(f"item {index}")
        if stream is not None:
            where.append(f"stream '{stream}'")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class UnknownStreamError(StoreInputError):
    """A stream name is not one of ``text``, ``image``, ``audio``, ``video``."""


class DimensionMismatchError(StoreInputError):
    """A vector's length differs from the collection's vector size."""


class CollectionMismatchError(StoreError):
    """An existing collection cannot hold omni-rag points (other size, distance or vector names).

    Raised when the store opens the collection rather than on first write, so a wrong
    collection name or model is caught before any data is mixed in.
    """


class CollectionNameError(StoreInputError):
    """A collection name no engine can hold (empty, a path separator, too long...).

    Raised when the store is constructed, so a command fails before any embedding starts.
    """


class StoreLockedError(StoreError):
    """The embedded store folder is open in another process."""


class StoreWriteError(StoreError):
    """A write reached the engine and failed (disk full, permissions, server error).

    Nothing after the failing batch was written; callers should stop rather than go on embedding.
    """


class LegacyStoreError(StoreError):
    """The folder holds an omni-rag 0.1 store (qdrant-client local mode); it needs one migration."""
