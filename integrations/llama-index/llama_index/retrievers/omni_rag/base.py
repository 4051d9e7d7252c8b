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
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import FusionMode, Hit

_MEDIA = ("video", "audio", "image")
#: Node metadata kept out of LLM prompts and embeddings: useful to code, noise to a model.
_INTERNAL_KEYS = ["modalities", "stream_scores", "segment_index"]


def _media_of(hit: Hit) -> dict[str, str]:
    """The media fields a hit's source stands for, e.g. ``{"video": path, "audio": path}``."""
    source = hit.source
    if source is None:
        return {}
    modalities = set(hit.payload.get("modalities") or [])
    media = {name: source for name in _MEDIA if name in modalities}
    # A caption with its picture is stored as one "text" stream; its source is the image.
    return media or {"image": source}


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One search hit as a LlamaIndex node with its fused score.

    The node's id is the item id, its text the item's text (or a short description of its media,
    e.g. ``[video: talk.mp4] [12.0s-24.0s]``), and its metadata the user metadata plus ``source``,
    ``modality`` (the main one: video, audio, image or text), ``modalities`` (stored streams),
    ``stream_scores``, ``start_s``, ``end_s`` and ``segment_index``.
    """
    payload = hit.payload
    user = dict(payload.get("metadata") or {})
    text = user.pop("text", None)
    media = _media_of(hit)
    start_s, end_s = payload.get("start_s"), payload.get("end_s")
    if text is None:
        text = Content(**media, start_s=start_s, end_s=end_s).describe() or hit.id
    metadata = {
        **user,
        "source": hit.source,
        "modality": next((name for name in _MEDIA if name in media), "text"),
        "modalities": list(payload.get("modalities") or []),
        "stream_scores": dict(hit.stream_scores),
        "start_s": start_s,
        "end_s": end_s,
        "segment_index": payload.get("segment_index"),
    }
    common: dict[str, Any] = {
        "id_": hit.id,
        "text": text,
        "metadata": metadata,
        "excluded_llm_metadata_keys": list(_INTERNAL_KEYS),
        "excluded_embed_metadata_keys": list(_INTERNAL_KEYS),
    }
    node = ImageNode(image_path=hit.source, **common) if set(media) == {"image"} else TextNode(**common)
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
