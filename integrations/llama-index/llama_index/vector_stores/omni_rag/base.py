"""``OmniVectorStore``: a LlamaIndex vector store on omni-rag's per-stream store, fused at query time.

Nodes embedded by the index land in their stream (``ImageNode`` in ``image``, the rest in
``text``); nodes given without an embedding (media ``Node``\\ s with audio/video resources, image
nodes) are embedded by the store's ``embed_model`` through :meth:`omni_rag.retriever.OmniRetriever.add`,
each stream apart, long recordings cut into segments as ``omni-rag index`` does. Queries run
:meth:`omni_rag.store.OmniStore.search` (exact late fusion). Nodes and filters are translated in
:mod:`.records` only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.embeddings.omni_rag import OmniEmbedding
from llama_index.vector_stores.omni_rag.records import (
    METADATA,
    REF_DOC_KEY,
    hit_to_node,
    ids_filter,
    node_media,
    node_record,
    to_qdrant_filter,
)
from qdrant_client import QdrantClient, models

from omni_rag import OmniEmbedder
from omni_rag.content import ItemLike
from omni_rag.hits import stored_hit
from omni_rag.indexing import AddResult, claim_collection, model_info, with_segments
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.retriever import check_model_info
from omni_rag.segments import SegmentPolicy
from omni_rag.store import FusionMode, OmniStore, store_or_open

#: Keywords of :meth:`omni_rag.store.OmniStore.search` a query may pass (``vector_store_kwargs``).
SEARCH_OPTIONS = ("fusion", "streams", "weights", "oversampling", "hnsw_ef", "exact")
#: ``VectorStoreQuery`` fields this store does not implement: set, they raise rather than be ignored.
_UNSUPPORTED_QUERY = (
    "alpha",
    "sparse_top_k",
    "hybrid_top_k",
    "mmr_threshold",
    "output_fields",
    "embedding_field",
)


class OmniVectorStore(BasePydanticVectorStore):
    """omni-rag's store (one named vector per stream, exact late fusion) as a LlamaIndex vector store.

    Examples:
        >>> from llama_index.core import StorageContext, VectorStoreIndex
        >>> from llama_index.vector_stores.omni_rag import OmniVectorStore
        >>> store = OmniVectorStore(collection_name="docs", path="./index", embed_model=embed_model)
        >>> context = StorageContext.from_defaults(vector_store=store)
        >>> index = VectorStoreIndex.from_documents(docs, storage_context=context, embed_model=embed_model)
        >>> store.add_media(["talk.mp4"])  # video + audio streams, segmented like `omni-rag index`

    Args:
        collection_name: The collection.
        path: Folder of an embedded store (Qdrant Edge); none of ``path``/``url``/``client``/
            ``store``: an embedded store in memory.
        url: A Qdrant server (qdrant-client).
        api_key: The server's API key.
        client: An existing ``QdrantClient`` (e.g. its ``":memory:"`` mode).
        store: An open :class:`omni_rag.store.OmniStore` to share (one collection for a text and
            an image store: ``streams=["text"]`` and ``streams=["image"]``).
        embed_model: An :class:`~llama_index.embeddings.omni_rag.OmniEmbedding`: embeds media
            nodes and :meth:`add_media` items, and its model is recorded on the collection
            (another model is refused).
        fusion: Default fusion of per-stream scores: ``mean``, ``max``, ``rrf`` or ``dbsf``.
        streams: Streams queries search by default (``None``: all).
        weights: Default per-stream weights.
        segment: How media nodes' long recordings are cut (``True``: as ``omni-rag index``, a
            :class:`omni_rag.segments.SegmentPolicy`, or ``False``: never).
    """

    stores_text: bool = True
    flat_metadata: bool = False
    collection_name: str = "llama_index"
    fusion: FusionMode = "mean"
    streams: list[str] | None = None
    weights: dict[str, float] | None = None

    _store: OmniStore = PrivateAttr()
    _embedder: OmniEmbedder | None = PrivateAttr(default=None)
    _segment: SegmentPolicy | bool | None = PrivateAttr(default=True)

    def __init__(
        self,
        collection_name: str = "llama_index",
        *,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        store: OmniStore | None = None,
        embed_model: OmniEmbedding | None = None,
        fusion: FusionMode = "mean",
        streams: Sequence[str] | None = None,
        weights: Mapping[str, float] | None = None,
        segment: SegmentPolicy | bool | None = True,
    ) -> None:
        fields: dict[str, Any] = {
            "collection_name": collection_name,
            "fusion": fusion,
            "streams": list(streams) if streams is not None else None,
            "weights": dict(weights) if weights is not None else None,
        }
        super().__init__(**fields)
        self._store = store_or_open(
            collection_name, store=store, path=path, url=url, api_key=api_key, client=client
        )
        self._embedder = embed_model.embedder if embed_model is not None else None
        self._segment = segment

    @classmethod
    def class_name(cls) -> str:
        return "OmniVectorStore"

    @property
    def client(self) -> OmniStore:
        """The :class:`omni_rag.store.OmniStore` underneath."""
        return self._store

    # -- writes -----------------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert nodes: embedded ones into their stream, the others embedded here per stream.

        Returns:
            The node ids, in order.

        Raises:
            ValueError: A node with neither an embedding nor content, or a reserved metadata key.
            TypeError: Nodes to embed but no ``embed_model``.
        """
        if add_kwargs:
            raise TypeError(f"unexpected arguments {sorted(add_kwargs)}")
        records = [node_record(node) for node in nodes]
        embedded = [r for r in records if r.node.embedding is not None]
        to_embed = [r for r in records if r.node.embedding is None]
        items = [node_media(r.node) for r in to_embed]
        empty = [r.node.node_id for r, item in zip(to_embed, items, strict=True) if item is None]
        if empty:
            raise ValueError(f"node(s) {empty} have neither an embedding nor content to embed")
        if embedded:
            self._claim()
            self._store.upsert(
                [r.node.node_id for r in embedded],
                [{r.stream: np.asarray(r.node.embedding, dtype=np.float32)} for r in embedded],
                [r.payload for r in embedded],
            )
        if to_embed:
            self._core().add(
                [i for i in items if i is not None],
                ids=[r.node.node_id for r in to_embed],
                metadata=[r.payload[METADATA] for r in to_embed],
                overwrite=True,
                segment=self._segment,
            )
        return [node.node_id for node in nodes]

    def add_media(
        self,
        items: Sequence[ItemLike | os.PathLike[str]],
        *,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        errors: str = "raise",
        segment: SegmentPolicy | bool | None = None,
    ) -> AddResult:
        """Embed files or :class:`omni_rag.Content` per stream, exactly as ``omni-rag index`` does.

        Args:
            items: Paths, :class:`omni_rag.Content` or dicts of its fields.
            ids: Item ids (default: content hashes, as the CLI's).
            metadatas: Per-item metadata (filterable as ``MetadataFilter`` keys).
            errors: ``"raise"`` or ``"skip"`` (failures listed in the result).
            segment: The store's ``segment`` when ``None``.

        Returns:
            What was added, already stored, or failed (with ``errors="skip"``), per item.
        """
        segment = self._segment if segment is None else segment
        return self._core().add_media(items, ids=ids, metadata=metadatas, errors=errors, segment=segment)

    def _core(self) -> CoreRetriever:
        if self._embedder is None:
            raise TypeError("embedding media needs an omni-rag model: pass embed_model=OmniEmbedding(...)")
        return CoreRetriever(self._embedder, self._store)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every point of a document: its nodes and their segments."""
        if delete_kwargs:
            raise TypeError(f"unexpected arguments {sorted(delete_kwargs)}")
        self._store.delete_where({f"{METADATA}.{REF_DOC_KEY}": ref_doc_id})

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete nodes (and their segments) by id, by filter, or both (the nodes matching both)."""
        if delete_kwargs:
            raise TypeError(f"unexpected arguments {sorted(delete_kwargs)}")
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters; clear() deletes everything")
        if node_ids == []:
            return
        selection = self._selection(node_ids, filters)
        assert selection is not None
        self._store.delete_where(selection)

    def _selection(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> models.Filter | None:
        """Nodes by id (with the segments of media items :meth:`add_media` cut) and by filter."""
        if node_ids is not None:
            node_ids = with_segments(self._store, node_ids)
        return _selection(node_ids, None, filters)

    def clear(self) -> None:
        """Delete the collection and every point in it."""
        self._store.drop()

    # -- reads ------------------------------------------------------------------------------------

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Nodes (segments included) by id, by filter, or both; every node when neither is given."""
        if node_ids == []:
            return []
        selection = self._selection(node_ids, filters)
        return [hit_to_node(stored_hit(p)) for p in self._store.scroll(filter=selection, with_vectors=False)]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Nearest nodes to ``query.query_embedding``, fused over streams.

        ``filters``, ``doc_ids`` and ``node_ids`` restrict the search; ``fusion``, ``streams``,
        ``weights``, ``oversampling``, ``hnsw_ef`` and ``exact`` may come as keyword arguments
        (``as_retriever(vector_store_kwargs={...})``).

        Raises:
            ValueError: A query mode or field this store does not implement, named.
        """
        _check_query(query)
        unknown = sorted(set(kwargs) - set(SEARCH_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected query arguments {unknown}; accepted: {list(SEARCH_OPTIONS)}")
        assert query.query_embedding is not None, "checked"
        vector = np.asarray(query.query_embedding, dtype=np.float32)
        if self._store.dim is not None:
            self._check_model()
        options = {k: v for k, v in kwargs.items() if v is not None}
        # empty lists mean "no restriction": VectorStoreIndex passes its (empty) node list
        node_ids = with_segments(self._store, query.node_ids) if query.node_ids else None
        hits = self._store.search(
            vector,
            limit=query.similarity_top_k,
            filter=_selection(node_ids, query.doc_ids or None, query.filters),
            fusion=options.pop("fusion", self.fusion),
            streams=options.pop("streams", self.streams),
            weights=options.pop("weights", self.weights),
            **options,
        )
        return VectorStoreQueryResult(
            nodes=[hit_to_node(h) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    # -- async ------------------------------------------------------------------------------------

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """:meth:`add` in a worker thread."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """:meth:`delete` in a worker thread."""
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """:meth:`delete_nodes` in a worker thread."""
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """:meth:`get_nodes` in a worker thread."""
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    async def aclear(self) -> None:
        """:meth:`clear` in a worker thread."""
        await asyncio.to_thread(self.clear)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """:meth:`query` in a worker thread."""
        return await asyncio.to_thread(self.query, query, **kwargs)

    # -- model ------------------------------------------------------------------------------------

    def _claim(self) -> None:
        """Refuse another model's collection, and record ours on one that has none yet."""
        if self._embedder is not None:
            self._check_model()
            claim_collection(self._store, model_info(self._embedder))

    def _check_model(self) -> None:
        """Refuse a collection another model filled (known when an ``embed_model`` is given)."""
        if self._embedder is not None:
            check_model_info(self._store, model_info(self._embedder))


def _selection(
    node_ids: Sequence[str] | None, doc_ids: Sequence[str] | None, filters: MetadataFilters | None
) -> models.Filter | None:
    """Nodes by id, documents by id and metadata filters, all of which must hold."""
    parts: list[models.Condition] = list(ids_filter(node_ids, doc_ids))
    converted = to_qdrant_filter(filters)
    if converted is not None:
        parts.append(converted)
    return models.Filter(must=parts) if parts else None


def _check_query(query: VectorStoreQuery) -> None:
    if query.mode != VectorStoreQueryMode.DEFAULT:
        raise ValueError(f"query mode {query.mode.value!r} is not supported; use 'default'")
    set_fields = [name for name in _UNSUPPORTED_QUERY if getattr(query, name) is not None]
    if set_fields:
        raise ValueError(f"VectorStoreQuery field(s) {set_fields} are not supported by OmniVectorStore")
    if query.query_embedding is None:
        raise ValueError("the query has no query_embedding: give the index an embed_model")
