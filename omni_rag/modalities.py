"""The modality names, in one torch-free place every layer imports.

Streams are kept as separate named vectors because the paper scores a video's audio and its
frames separately and fuses the scores afterwards (FineVideo NDCG@10 0.5662 with late fusion vs
0.4700 for one joint audio+video sequence).
"""

from __future__ import annotations

from typing import Final, Literal

Stream = Literal["text", "image", "audio", "video"]
"""Name of one modality stream; each is a named vector of a collection."""

STREAMS: Final[tuple[Stream, ...]] = ("text", "image", "audio", "video")
"""All streams, in the canonical order used for payloads, weights and score columns."""

MEDIA_FIELDS: Final[tuple[Stream, ...]] = ("image", "audio", "video")
"""The :class:`~omni_rag.content.Content` fields that hold media (files, URLs or arrays)."""

SOURCE_ORDER: Final[tuple[Stream, ...]] = ("video", "audio", "image")
"""Which media field names a point's ``source`` when several do: the richest first."""
