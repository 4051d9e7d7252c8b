"""The one translation between LangChain and the omni-rag store: documents, points and filters.

Every :class:`~langchain_omni_rag.OmniVectorStore` method goes through these functions, which
reuse :mod:`omni_rag.hits` (as the retriever and the CLI do) rather than read payloads their own way.

A document is stored as a ``text`` stream point whose payload ``metadata`` is the document's
metadata plus ``text`` (its ``page_content``): the layout ``OmniRetriever.add`` and the CLI write,
so all three read each other's points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from qdrant_client import models

from omni_rag.hits import hit_media_fields, hit_text, hit_user_metadata
from omni_rag.store import Hit, to_filter

#: Payload key under which the caller's metadata lives; dict filter keys are relative to it.
METADATA = "metadata"
#: The key of the stored metadata holding the document's text.
TEXT_KEY = "text"


def document_payload(text: str, metadata: Mapping[str, Any] | None, index: int) -> dict[str, Any]:
    """The payload of one document: its metadata with its text under ``text``.

    Raises:
        ValueError: The metadata has a ``text`` key (it would overwrite the content), naming the index.
    """
    given = dict(metadata or {})
    if TEXT_KEY in given:
        raise ValueError(
            f"document {index}: metadata key {TEXT_KEY!r} is reserved for the page content; rename it"
        )
    return {METADATA: {**given, TEXT_KEY: text}}


def hit_to_document(hit: Hit) -> Document:
    """A stored point as the ``Document`` that was added (media points also say where they are).

    ``page_content`` is the text (or a description of the media); ``metadata`` the metadata as
    given, plus :func:`omni_rag.hits.hit_media_fields` for audio, video and image points.
    """
    return Document(
        id=hit.id, page_content=hit_text(hit), metadata={**hit_user_metadata(hit), **hit_media_fields(hit)}
    )


def to_qdrant_filter(filter: models.Filter | Mapping[str, Any] | None) -> models.Filter | None:
    """A Qdrant filter from a LangChain ``filter`` argument.

    A ``Filter`` passes through (its keys are payload paths: ``metadata.<key>`` for document
    metadata). A dict, as langchain-qdrant's, names metadata keys: ``{"lang": "en"}`` keeps
    documents whose ``metadata["lang"] == "en"``; nested dicts address nested keys, a list
    value matches any of its items, ``None`` a missing or null key.
    """
    if filter is None or isinstance(filter, models.Filter):
        return filter
    if not isinstance(filter, Mapping):
        raise TypeError(
            f"filter must be a dict or a qdrant_client.models.Filter, got {type(filter).__name__}"
        )
    return to_filter(dict(_flatten(filter, METADATA)))


def _flatten(filter: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in filter.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            pairs.extend(_flatten(value, path))
        else:
            pairs.append((path, value))
    return pairs


def split_search_kwargs(kwargs: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    """The search options the store takes; any other keyword is an error naming it.

    Raises:
        TypeError: An unknown keyword, with the ones accepted.
    """
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"unexpected search arguments {unknown}; accepted: {sorted(allowed)}")
    return {k: v for k, v in kwargs.items() if v is not None}
