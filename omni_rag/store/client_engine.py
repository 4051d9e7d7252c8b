"""Server engine: a Qdrant server or cluster through qdrant-client (or any ``QdrantClient``).

Collection metadata lives in Qdrant's collection metadata (server >= 1.16), so it is deleted
with the data it describes and never shows up in a search. qdrant-client's own ``":memory:"``
mode runs the same code without a server; the store's congruence tests use it for that.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from omni_rag.store.engine import (
    EnginePoint,
    EngineRecord,
    FusedQuery,
    IndexInfo,
    Nearest,
    VectorSpec,
    collection_vectors,
)
from omni_rag.store.errors import StoreError, StoreWriteError
from omni_rag.store.models import INFO_METADATA_KEY, PayloadKey

_KEYWORD_INDEXES = (PayloadKey.ID, PayloadKey.SOURCE, PayloadKey.MODALITIES, PayloadKey.STREAM_SET)


class ClientEngine:
    """One collection through a ``QdrantClient``; closes the client only if it made it."""

    def __init__(self, collection: str, client: QdrantClient, *, owns_client: bool, on_disk: bool) -> None:
        self.collection = collection
        self.client = client
        self._owns_client = owns_client
        self._on_disk = on_disk
        # qdrant-client's local mode searches by brute force: search parameters change nothing
        # there and only make it warn, so they go to servers alone
        options = getattr(client, "init_options", {}) or {}
        self._indexed = options.get("location") != ":memory:" and options.get("path") is None

    def exists(self) -> bool:
        return bool(self.client.collection_exists(self.collection))

    def vectors(self) -> dict[str, VectorSpec]:
        params = self.client.get_collection(self.collection).config.params.vectors
        if not isinstance(params, Mapping):
            return {}
        return {
            name: VectorSpec(name, p.size, "cosine" if p.distance == models.Distance.COSINE else "dot")
            for name, p in params.items()
        }

    def create(self, dim: int, metadata: Mapping[str, Any] | None) -> None:
        config = {
            s.name: models.VectorParams(
                size=s.size,
                distance=models.Distance.COSINE if s.distance == "cosine" else models.Distance.DOT,
                on_disk=self._on_disk or None,
            )
            for s in collection_vectors(dim)
        }
        self.client.create_collection(
            self.collection,
            vectors_config=config,
            metadata={INFO_METADATA_KEY: dict(metadata)} if metadata is not None else None,
        )
        with warnings.catch_warnings():
            # embedded mode warns that indexes do nothing there; they matter on a server
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for key in _KEYWORD_INDEXES:
                self.client.create_payload_index(
                    self.collection, key, field_schema=models.PayloadSchemaType.KEYWORD, wait=True
                )

    def get_metadata(self) -> dict[str, Any]:
        metadata = self.client.get_collection(self.collection).config.metadata or {}
        return dict(metadata.get(INFO_METADATA_KEY) or {})

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        self.client.update_collection(self.collection, metadata={INFO_METADATA_KEY: dict(metadata)})

    def upsert(self, points: Sequence[EnginePoint]) -> None:
        structs = [
            models.PointStruct(
                id=p.id, vector={k: v.tolist() for k, v in p.vectors.items()}, payload=p.payload
            )
            for p in points
        ]
        try:
            self.client.upsert(self.collection, points=structs, wait=True)
        except Exception as error:
            raise StoreWriteError(f"write to collection {self.collection!r} failed: {error}") from error

    def delete(self, ids: Sequence[str]) -> None:
        try:
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True
            )
        except Exception as error:
            raise StoreWriteError(f"delete in collection {self.collection!r} failed: {error}") from error

    def retrieve(self, ids: Sequence[str], with_vectors: Sequence[str] | bool) -> list[EngineRecord]:
        vectors = list(with_vectors) if not isinstance(with_vectors, bool) else with_vectors
        records = self.client.retrieve(
            self.collection, ids=list(ids), with_payload=True, with_vectors=vectors
        )
        return [_record(r) for r in records]

    def count(self, filter: models.Filter | None = None) -> int:
        return int(self.client.count(self.collection, count_filter=filter, exact=True).count)

    def stream_sets(self) -> Mapping[str, int]:
        # asked each time: other clients may write to a server between two searches
        response = self.client.facet(self.collection, key=PayloadKey.STREAM_SET, limit=16, exact=True)
        return {str(hit.value): int(hit.count) for hit in response.hits if hit.count > 0}

    def nearest(self, requests: Sequence[Nearest]) -> list[list[EngineRecord]]:
        batch = [
            models.QueryRequest(
                query=r.vector.tolist(),
                using=r.using,
                limit=r.limit,
                filter=r.filter,
                params=_params(r, self._indexed),
                with_payload=r.with_payload,
                with_vector=False,
            )
            for r in requests
        ]
        responses = self.client.query_batch_points(self.collection, requests=batch)
        return [[_record(p) for p in response.points] for response in responses]

    def fused(self, query: FusedQuery) -> list[EngineRecord]:
        prefetch = [
            models.Prefetch(
                query=p.vector.tolist(),
                using=p.using,
                limit=p.limit,
                filter=p.filter,
                params=_params(p, self._indexed),
            )
            for p in query.prefetch
        ]
        fusion: models.Query
        if query.fusion == "dbsf":
            fusion = models.FusionQuery(fusion=models.Fusion.DBSF)
        elif query.weights is not None:
            fusion = models.RrfQuery(rrf=models.Rrf(weights=list(query.weights)))
        else:
            fusion = models.FusionQuery(fusion=models.Fusion.RRF)
        response = self.client.query_points(
            self.collection,
            prefetch=prefetch,
            query=fusion,
            query_filter=query.filter,
            limit=query.limit,
            with_payload=True,
            with_vectors=False,
        )
        return [_record(p) for p in response.points]

    def scroll(
        self, offset: str | None, limit: int, filter: models.Filter | None = None, with_vectors: bool = True
    ) -> tuple[list[EngineRecord], str | None]:
        records, next_offset = self.client.scroll(
            self.collection,
            offset=offset,
            limit=limit,
            scroll_filter=filter,
            with_payload=True,
            with_vectors=with_vectors,
        )
        return [_record(r) for r in records], None if next_offset is None else str(next_offset)

    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def optimize(self, show_progress: bool = False) -> None:
        """A server builds its indexes in the background; nothing to wait for here."""

    def keep_indexed(self, show_progress: bool = False) -> None:
        """A server's own optimizers index segments as they fill."""

    def index_info(self) -> IndexInfo:
        info = self.client.get_collection(self.collection)
        return IndexInfo(
            points=int(info.points_count or 0),
            indexed_vectors=int(info.indexed_vectors_count or 0),
            segments=int(info.segments_count or 0),
        )

    def drop(self) -> None:
        self.client.delete_collection(self.collection)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


def _params(request: Nearest, indexed: bool) -> models.SearchParams | None:
    """Search effort and exactness, for a collection with an index (local mode is always exact)."""
    if not indexed or (request.hnsw_ef is None and not request.exact):
        return None
    # exact means exact: a full scan on the originals, not on quantized copies a server may keep
    ignore = models.QuantizationSearchParams(ignore=True) if request.exact else None
    return models.SearchParams(hnsw_ef=request.hnsw_ef, exact=request.exact, quantization=ignore)


def _record(point: Any) -> EngineRecord:
    vectors = point.vector if isinstance(point.vector, Mapping) else {}
    if not isinstance(point.id, (str, int)):
        raise StoreError(f"unexpected point id {point.id!r}")
    return EngineRecord(
        id=str(point.id),
        payload=dict(point.payload or {}),
        vectors={k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()},
        score=float(point.score) if getattr(point, "score", None) is not None else None,
    )
