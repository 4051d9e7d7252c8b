"""``OmniRetriever``: the omni-rag retriever (per-stream vectors, late fusion) as a LangChain retriever."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from omni_rag.hits import hit_metadata, hit_text
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import FusionMode, Hit


def hit_to_document(hit: Hit) -> Document:
    """One search hit as a LangChain ``Document``.

    ``page_content`` is the item's text, or a short description of its media; ``metadata`` is
    :func:`omni_rag.hits.hit_metadata`: the user metadata plus ``id``, ``source``, ``modality``,
    ``modalities``, ``score``, ``stream_scores``, ``start_s``, ``end_s`` and ``segment_index``.
    """
    return Document(id=hit.id, page_content=hit_text(hit), metadata=hit_metadata(hit))


class OmniRetriever(BaseRetriever):
    """Search an omni-rag store (text, images, audio, video) from LangChain.

    Examples:
        >>> from omni_rag.retriever import OmniRetriever as CoreRetriever
        >>> from langchain_omni_rag import OmniRetriever
        >>> retriever = OmniRetriever(retriever=CoreRetriever(embedder, store), k=4)
        >>> retriever.invoke("how long do I bake bread?")
        >>> retriever.invoke("volcano", k=1)

    Args:
        retriever: The core :class:`omni_rag.retriever.OmniRetriever` (embedder + store).
        k: Documents per query; ``None`` uses the core retriever's ``k``. ``invoke(..., k=n)``
            overrides it for one call.
        streams: Streams to search (``None``: the core retriever's default, all).
        fusion: ``mean``, ``rrf``, ``dbsf`` or ``max`` (``None``: the core retriever's).
        weights: Per-stream weights for ``mean`` fusion.
        filter: Payload filter, a Qdrant ``Filter`` or ``{"metadata.lang": "en"}``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: CoreRetriever
    k: int | None = Field(default=None, gt=0)
    streams: list[str] | None = None
    fusion: FusionMode | None = None
    weights: dict[str, float] | None = None
    filter: Any = None

    def _search(self, query: str, k: int | None = None, **kwargs: Any) -> list[Document]:
        weights: Mapping[str, float] | None = kwargs.pop("weights", self.weights)
        hits = self.retriever.search(
            query,
            k=self.k if k is None else k,
            streams=kwargs.pop("streams", self.streams),
            fusion=kwargs.pop("fusion", self.fusion),
            weights=weights,
            filter=kwargs.pop("filter", self.filter),
        )
        if kwargs:
            raise TypeError(f"unexpected search arguments {sorted(kwargs)}")
        return [hit_to_document(hit) for hit in hits]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query, **kwargs)
