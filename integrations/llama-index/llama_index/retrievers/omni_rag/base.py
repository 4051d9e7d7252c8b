"""``OmniRetriever``: the omni-rag retriever (per-stream vectors, late fusion) as a LlamaIndex retriever.

It only translates: a :class:`~llama_index.core.schema.QueryBundle` becomes an omni-rag query
(text, image, or both), and each :class:`omni_rag.store.Hit` becomes a ``NodeWithScore``
(an ``ImageNode`` when the hit is an image). Embedding, searching and fusing stay in
:class:`omni_rag.retriever.OmniRetriever`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode
from llama_index.embeddings.omni_rag.base import to_image_input

from omni_rag import Content
from omni_rag.content import ItemLike
from omni_rag.hits import hit_media, hit_metadata, hit_text
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import FusionMode, Hit

#: Node metadata kept out of LLM prompts and embeddings: useful to code, noise to a model.
_INTERNAL_KEYS = ["modalities", "stream_scores", "segment_index"]


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One search hit as a LlamaIndex node with its fused score (an ``ImageNode`` for an image).

    The node's id is the item id, its text the item's text (or a short description of its media),
    and its metadata :func:`omni_rag.hits.hit_metadata` without ``id`` and ``score``, which the
    node and ``NodeWithScore`` already carry.
    """
    metadata = {k: v for k, v in hit_metadata(hit).items() if k not in ("id", "score")}
    common: dict[str, Any] = {
        "id_": hit.id,
        "text": hit_text(hit),
        "metadata": metadata,
        "excluded_llm_metadata_keys": list(_INTERNAL_KEYS),
        "excluded_embed_metadata_keys": list(_INTERNAL_KEYS),
    }
    is_image = set(hit_media(hit)) == {"image"}
    node = ImageNode(image_path=hit.source, **common) if is_image else TextNode(**common)
    return NodeWithScore(node=node, score=hit.score)


class OmniRetriever(BaseRetriever):
    """Search an omni-rag store from LlamaIndex with text, an image, or both.

    Examples:
        >>> from omni_rag.retriever import OmniRetriever as CoreRetriever
        >>> from llama_index.retrievers.omni_rag import OmniRetriever
        >>> retriever = OmniRetriever(CoreRetriever(embedder, store), similarity_top_k=5)
        >>> retriever.retrieve("how long do I bake bread?")
        >>> retriever.retrieve(QueryBundle("", image_path="sunset.jpg"))

    Args:
        retriever: The core :class:`omni_rag.retriever.OmniRetriever` (embedder + store).
        similarity_top_k: Results per query (``None``: the core retriever's ``k``).
        streams: Streams to search (``None``: the core retriever's default, all).
        fusion: ``mean``, ``rrf``, ``dbsf`` or ``max`` (``None``: the core retriever's).
        weights: Per-stream weights for ``mean`` fusion.
        filters: Payload filter, a Qdrant ``Filter`` or ``{"metadata.lang": "en"}``.
        callback_manager: LlamaIndex callbacks.
        verbose: LlamaIndex verbosity.
    """

    def __init__(
        self,
        retriever: CoreRetriever,
        similarity_top_k: int | None = None,
        streams: Sequence[str] | None = None,
        fusion: FusionMode | None = None,
        weights: Mapping[str, float] | None = None,
        filters: Any = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self._retriever = retriever
        self._similarity_top_k = similarity_top_k
        self._streams = list(streams) if streams is not None else None
        self._fusion = fusion
        self._weights = dict(weights) if weights is not None else None
        self._filters = filters
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def core(self) -> CoreRetriever:
        """The wrapped :class:`omni_rag.retriever.OmniRetriever`."""
        return self._retriever

    @staticmethod
    def to_query(query_bundle: QueryBundle) -> ItemLike:
        """The omni-rag query of a bundle: its text, its image, or both in one query."""
        text = query_bundle.query_str if query_bundle.query_str.strip() else None
        images = query_bundle.embedding_image
        if not images:
            if text is None:
                raise ValueError("empty query: give a query string or an image_path")
            return text
        if len(images) > 1:
            raise ValueError(f"one image per query, got {len(images)}")
        return Content(text=text, image=to_image_input(images[0]))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._retriever.search(
            self.to_query(query_bundle),
            k=self._similarity_top_k,
            streams=self._streams,
            fusion=self._fusion,
            weights=self._weights,
            filter=self._filters,
        )
        return [hit_to_node(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)
