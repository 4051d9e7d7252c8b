"""``OmniVectorStore``: a LangChain ``VectorStore`` on omni-rag's per-stream store, fused at query time.

Text documents become ``text`` stream points embedded by the given ``Embeddings``; media
(:meth:`OmniVectorStore.add_media`) go through :meth:`omni_rag.retriever.OmniRetriever.add`, so each
stream is embedded apart and long recordings are cut into segments exactly as ``omni-rag index``
does. Searches run :meth:`omni_rag.store.OmniStore.search` (exact late fusion); ``fusion=``,
``streams=`` and ``weights=`` pass through. Payloads and filters are translated in
:mod:`langchain_omni_rag.records` only.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from qdrant_client import QdrantClient

from langchain_omni_rag.embeddings import OmniEmbeddings
from langchain_omni_rag.records import (
    document_payload,
    hit_to_document,
    split_search_kwargs,
    to_qdrant_filter,
)
from omni_rag import OmniEmbedder
from omni_rag.content import ItemLike
from omni_rag.hits import stored_hit
from omni_rag.indexing import AddResult, claim_collection, delete_items
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.retriever import check_model_info
from omni_rag.segments import SegmentPolicy
from omni_rag.store import FusionMode, Hit, OmniStore, store_or_open

#: Keywords of :meth:`omni_rag.store.OmniStore.search` a search call may pass through.
SEARCH_OPTIONS = ("fusion", "streams", "weights", "oversampling", "hnsw_ef", "exact")


class OmniVectorStore(VectorStore):
    """omni-rag's store (one named vector per stream, exact late fusion) as a LangChain vector store.

    Examples:
        >>> from langchain_omni_rag import OmniEmbeddings, OmniVectorStore
        >>> store = OmniVectorStore(embedding=OmniEmbeddings(), collection_name="docs", path="./index")
        >>> store.add_documents(docs)
        >>> store.add_media(["talk.mp4", "slide.png"])  # video + audio streams, segmented
        >>> store.similarity_search("volcano", k=4, streams=["audio", "video"])

    Args:
        embedding: Embeds texts and queries (``OmniEmbeddings`` for media and cross-modal search).
        collection_name: The collection.
        path: Folder of an embedded store (Qdrant Edge); none of ``path``/``url``/``client``/
            ``store``: an embedded store in memory.
        url: A Qdrant server (qdrant-client).
        api_key: The server's API key.
        client: An existing ``QdrantClient`` (e.g. its ``":memory:"`` mode).
        store: An open :class:`omni_rag.store.OmniStore` to use as is.
        fusion: Default fusion of per-stream scores: ``mean``, ``max``, ``rrf`` or ``dbsf``.
        streams: Default streams searched (``None``: all).
        weights: Default per-stream weights.
        embedder: The :class:`omni_rag.OmniEmbedder` for :meth:`add_media` (default: the one inside
            an ``OmniEmbeddings``).

    The model is recorded on the collection at the first write and another model is refused
    (:class:`omni_rag.retriever.ModelMismatchError`).
    """

    def __init__(
        self,
        embedding: Embeddings,
        collection_name: str = "langchain",
        *,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        store: OmniStore | None = None,
        fusion: FusionMode = "mean",
        streams: Sequence[str] | None = None,
        weights: Mapping[str, float] | None = None,
        embedder: OmniEmbedder | None = None,
    ) -> None:
        self._embedding = embedding
        self.store = store_or_open(
            collection_name, store=store, path=path, url=url, api_key=api_key, client=client
        )
        self.fusion: FusionMode = fusion
        self.streams = list(streams) if streams is not None else None
        self.weights = dict(weights) if weights is not None else None
        self._embedder = embedder if embedder is not None else _inner_embedder(embedding)

    @property
    def embeddings(self) -> Embeddings:
        """The ``Embeddings`` that embed texts and queries."""
        return self._embedding

    # -- writes -----------------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> list[str]:
        """Embed texts and upsert them as ``text`` stream points; an id given again replaces its point.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text (the key ``text`` is reserved).
            ids: One id per text (``None`` entries, as ``add_documents`` passes for documents
                without an id, get a new uuid4).
            batch_size: Texts embedded and written per round (each round is durable).

        Returns:
            The ids, in order.
        """
        batches = _batches(texts, metadatas, ids, batch_size, kwargs)
        for batch in batches:
            self._write(batch.ids, self._embedding.embed_documents(batch.texts), batch.payloads)
        return [i for batch in batches for i in batch.ids]

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> list[str]:
        """:meth:`add_texts` with the ``Embeddings``' async embedding; writes run in a thread."""
        batches = _batches(texts, metadatas, ids, batch_size, kwargs)
        for batch in batches:
            vectors = await self._embedding.aembed_documents(batch.texts)
            await asyncio.to_thread(self._write, batch.ids, vectors, batch.payloads)
        return [i for batch in batches for i in batch.ids]

    def add_media(
        self,
        items: Sequence[ItemLike | os.PathLike[str]],
        *,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        errors: str = "raise",
        segment: SegmentPolicy | bool | None = True,
    ) -> AddResult:
        """Embed images, audio, video (or any :class:`omni_rag.Content`) per stream, as the CLI does.

        A path becomes what ``omni-rag index`` makes of the file (a video with sound is a video
        and an audio stream; the id is its content hash), and recordings longer than a window
        are cut into segments ``<id>#<k>``, all through :meth:`omni_rag.retriever.OmniRetriever.add`.

        Returns:
            What was added, already stored, or failed (with ``errors="skip"``), per item.
        """
        core = CoreRetriever(self._require_embedder(), self.store)
        return core.add_media(items, ids=ids, metadata=metadatas, errors=errors, segment=segment)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id, and the segments ``<id>#<k>`` of items :meth:`add_media` cut
        (unknown ids are ignored).

        Raises:
            ValueError: No ids (this store never deletes everything implicitly).
        """
        if ids is None or kwargs:
            raise ValueError("delete needs ids=[...]; no other arguments are accepted")
        delete_items(self.store, list(ids))
        return True

    def _write(self, ids: list[str], vectors: Sequence[Sequence[float]], payloads: list[dict]) -> None:
        mine = self._model_info(len(vectors[0]))
        check_model_info(self.store, mine)
        claim_collection(self.store, mine)
        self.store.upsert(ids, [{"text": np.asarray(v, dtype=np.float32)} for v in vectors], payloads)

    # -- reads ------------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents with these ids, in their order; unknown ids are left out."""
        points = self.store.get(list(ids), with_vectors=False)
        return [hit_to_document(stored_hit(p)) for p in points if p is not None]

    def similarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        """Documents nearest to ``query``, fused over streams (``fusion``/``streams``/``weights`` apply)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and their fused scores (cosine for ``mean``/``max``), best first."""
        vector = self._embedding.embed_query(query)
        return self.similarity_search_with_score_by_vector(vector, k, filter, **kwargs)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Documents nearest to a query vector."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and fused scores for a query vector."""
        return [(hit_to_document(h), h.score) for h in self._search(embedding, k, filter, kwargs)]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents among the fused top ``fetch_k``, traded between relevance and diversity."""
        vector = self._embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter, **kwargs)

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR over the fused top ``fetch_k``; a point's vector is the mean of its unit searched streams."""
        hits = self._search(embedding, fetch_k, filter, kwargs)
        if not hits:
            return []
        streams = kwargs.get("streams") or self.streams
        candidates = _point_vectors(self.store, [h.id for h in hits], streams)
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), candidates.tolist(), lambda_mult=lambda_mult, k=k
        )
        return [hit_to_document(hits[i]) for i in chosen]

    def _search(self, vector: Sequence[float], k: int, filter: Any, kwargs: Mapping[str, Any]) -> list[Hit]:
        options = split_search_kwargs(kwargs, SEARCH_OPTIONS)
        query = np.asarray(vector, dtype=np.float32)
        if self.store.dim is not None:
            check_model_info(self.store, self._model_info(len(query)))
        return self.store.search(
            query,
            limit=k,
            filter=to_qdrant_filter(filter),
            fusion=options.pop("fusion", self.fusion),
            streams=options.pop("streams", self.streams),
            weights=options.pop("weights", self.weights),
            **options,
        )

    def _select_relevance_score_fn(self) -> Any:
        """Cosine in [-1, 1] to [0, 1]; ``rrf``/``dbsf`` scores are ranks, not similarities."""
        if self.fusion not in ("mean", "max"):
            raise ValueError(f"relevance scores need fusion 'mean' or 'max', not {self.fusion!r}")
        return lambda score: (1.0 + score) / 2.0

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> OmniVectorStore:
        """A store (built with ``kwargs``: ``collection_name``, ``path``, ``url``...) holding ``texts``."""
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # -- helpers ----------------------------------------------------------------------------------

    def _model_info(self, dim: int) -> dict[str, Any]:
        """What the collection records: the omni-rag model, or the ``Embeddings`` class."""
        if self._embedder is not None and isinstance(self._embedding, OmniEmbeddings):
            return {"model_id": self._embedder.model_id, "revision": self._embedder.revision, "dim": dim}
        kind = type(self._embedding)
        return {"model_id": f"{kind.__module__}.{kind.__qualname__}", "revision": None, "dim": dim}

    def _require_embedder(self) -> OmniEmbedder:
        if self._embedder is None:
            raise TypeError(
                "add_media needs an omni-rag model: pass embedding=OmniEmbeddings(...) "
                "or embedder=OmniEmbedder(...)"
            )
        return self._embedder


def _inner_embedder(embedding: Embeddings) -> OmniEmbedder | None:
    return embedding.embedder if isinstance(embedding, OmniEmbeddings) else None


@dataclass(frozen=True)
class _Batch:
    """Texts embedded and written together, with their ids and payloads."""

    texts: list[str]
    ids: list[str]
    payloads: list[dict[str, Any]]


def _batches(
    texts: Iterable[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str | None] | None,
    batch_size: int,
    unexpected: Mapping[str, Any],
) -> list[_Batch]:
    """Checked input cut into batches; everything is validated before anything is embedded."""
    if unexpected:
        raise TypeError(f"unexpected arguments {sorted(unexpected)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    if metadatas is not None and len(metadatas) != len(texts):
        raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
    if ids is not None and (isinstance(ids, str) or len(ids) != len(texts)):
        raise ValueError(f"ids must be a list of {len(texts)} ids, one per text")
    # LangChain passes None for documents without an id
    chosen = [i if i is not None else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
    payloads = [document_payload(t, metadatas[i] if metadatas else None, i) for i, t in enumerate(texts)]
    return [
        _Batch(texts[k : k + batch_size], chosen[k : k + batch_size], payloads[k : k + batch_size])
        for k in range(0, len(texts), batch_size)
    ]


def _point_vectors(store: OmniStore, ids: Sequence[str], streams: Sequence[str] | None) -> np.ndarray:
    """Per point, the unit mean of its unit stream vectors among ``streams`` (all when ``None``)."""
    rows = []
    for point in store.get(list(ids)):
        assert point is not None, "a hit just found"
        vectors = [v / np.linalg.norm(v) for s, v in point.vectors.items() if streams is None or s in streams]
        mean = np.mean(vectors, axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.asarray(rows)
