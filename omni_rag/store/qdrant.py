"""Qdrant-backed store: one named vector per modality stream, fused at query time.

Design choices (each one is a place where an alternative was weighed):

* **One code path.** Embedded (``:memory:`` or ``path=``) and server/cluster (``url=``) both go
  through :class:`qdrant_client.QdrantClient` methods only, so what is tested locally is what
  runs against a cluster.
* **Exact fused scores in numpy.** ``mean`` and ``max`` take candidates from one
  ``query_points`` call whose per-stream prefetches (``limit * oversampling`` each) are unioned
  by an RRF fusion, fetch the candidates' vectors with it, and score them exactly here. A
  Qdrant ``FormulaQuery`` can't do this: a point absent from one prefetch has no score for that
  stream there, so its mean would be wrong. The price is shipping ``candidates x streams x dim``
  floats per query, cheap in embedded mode; against a remote server prefer ``prefer_grpc=True``.
  Results equal brute force whenever the true top-k are among the candidates (always true for
  ``max`` with ``oversampling >= 1``, since a point's best stream must then rank in that stream's
  top-k).
* **rrf / dbsf stay native.** Qdrant's ``FusionQuery`` ranks; the vectors fetched with the hits
  only fill :attr:`Hit.stream_scores`.
* **Collection info in collection metadata.** :meth:`OmniStore.set_info` writes under the
  ``omni_rag`` key of Qdrant's collection metadata (qdrant-client >= 1.16, server >= 1.16; local
  mode persists it in ``meta.json``). Unlike a sentinel point it can never show up in a search,
  and unlike a side collection it is deleted with the data it describes.
"""

from __future__ import annotations

import math
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from omni_rag.store.errors import (
    CollectionMismatchError,
    DimensionMismatchError,
    StoreInputError,
    UnknownStreamError,
)
from omni_rag.store.fusion import fuse, resolve_streams, resolve_weights, score_matrix
from omni_rag.store.models import (
    CALLER_PAYLOAD_KEYS,
    FUSION_MODES,
    INFO_METADATA_KEY,
    STREAMS,
    FusionMode,
    Hit,
    HitGroup,
    PayloadKey,
    StoredPoint,
    Stream,
)

POINT_ID_NAMESPACE = uuid.UUID("8430158d-1408-46c4-8dc2-d85aa8ed2b27")
"""Namespace of the uuid5 that maps caller ids to point ids; fixed forever so re-upserts replace."""

_KEYWORD_INDEXES = (PayloadKey.ID, PayloadKey.SOURCE, PayloadKey.MODALITIES)


def point_id(caller_id: str) -> str:
    """Qdrant point id of a caller id; deterministic so upserting an id again replaces the point."""
    return str(uuid.uuid5(POINT_ID_NAMESPACE, caller_id))


FilterLike = models.Filter | Mapping[str, Any]


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


@dataclass(frozen=True)
class _Plan:
    """A validated query: what every search path needs."""

    query: list[float]
    streams: tuple[Stream, ...]
    weights: np.ndarray
    filter: models.Filter | None
    oversampling: float

    def prefetch(self, per_stream: int) -> list[models.Prefetch]:
        return [
            models.Prefetch(query=self.query, using=s, limit=per_stream, filter=self.filter)
            for s in self.streams
        ]


class OmniStore:
    """A Qdrant collection holding one named vector per modality stream (``text``, ``image``,
    ``audio``, ``video``), fused at query time.

    Args:
        collection: Collection name.
        location: ``":memory:"`` or a URL; the default when nothing else is given is ``":memory:"``.
        path: Folder of a persistent embedded database.
        url: Qdrant server or cluster URL.
        api_key: API key of the server.
        prefer_grpc: Use gRPC with a server: vectors travel as binary, which matters for ``mean``.
        client: An existing client; the store then never closes it.
        dim: Vector size. Given: the collection is created now (or checked if it exists).
            Omitted: taken from the existing collection or from the first upsert.
        on_disk: Keep vectors on disk (server only; embedded mode ignores it).
        write_batch_size: Points per upsert request, bounding request size and memory.
        oversampling: Default candidates per stream as a multiple of ``limit``.
        timeout: Request timeout in seconds for a server.

    Raises:
        CollectionMismatchError: The collection exists with another size, distance or vector names.
    """

    def __init__(
        self,
        collection: str,
        *,
        location: str | None = None,
        path: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        client: QdrantClient | None = None,
        dim: int | None = None,
        on_disk: bool = False,
        write_batch_size: int = 256,
        oversampling: float = 4.0,
        timeout: int | None = None,
    ) -> None:
        targets = [x for x in (location, path, url) if x is not None]
        if client is not None and (targets or api_key is not None):
            raise StoreInputError("pass either client= or location=/path=/url=/api_key=, not both")
        if len(targets) > 1:
            raise StoreInputError("pass only one of location=, path=, url=")
        if dim is not None and dim < 1:
            raise StoreInputError(f"dim must be >= 1, got {dim}")
        if write_batch_size < 1:
            raise StoreInputError(f"write_batch_size must be >= 1, got {write_batch_size}")
        _check_oversampling(oversampling)
        self._owns_client = client is None
        if client is None:
            client = QdrantClient(
                location=location if targets else ":memory:",
                path=path,
                url=url,
                api_key=api_key,
                prefer_grpc=prefer_grpc,
                timeout=timeout,
            )
        self.client = client
        self.collection = collection
        self.on_disk = on_disk
        self.write_batch_size = write_batch_size
        self.oversampling = oversampling
        self._dim: int | None = None
        self._pending_info: dict[str, Any] | None = None
        if not self._refresh(dim) and dim is not None:
            self._create(dim)

    # ------------------------------------------------------------------ collection

    @property
    def dim(self) -> int | None:
        """Vector size, or ``None`` while the collection does not exist yet."""
        return self._dim

    def _refresh(self, expected_dim: int | None = None) -> bool:
        """Load and check the collection if it exists; another process may have created it."""
        if self._dim is not None:
            return True
        if not self.client.collection_exists(self.collection):
            return False
        self._dim = self._check_collection(expected_dim)
        return True

    def _check_collection(self, expected_dim: int | None) -> int:
        vectors = self.client.get_collection(self.collection).config.params.vectors
        where = f"collection '{self.collection}'"
        if not isinstance(vectors, Mapping):
            raise CollectionMismatchError(f"{where} has a single unnamed vector; expected {list(STREAMS)}")
        missing = [s for s in STREAMS if s not in vectors]
        if missing:
            raise CollectionMismatchError(f"{where} lacks named vector(s) {missing}; has {list(vectors)}")
        distances = {s: vectors[s].distance for s in STREAMS if vectors[s].distance != models.Distance.COSINE}
        if distances:
            raise CollectionMismatchError(f"{where} uses distance {distances}; expected Cosine")
        sizes = {vectors[s].size for s in STREAMS}
        if len(sizes) != 1:
            raise CollectionMismatchError(f"{where} has streams of different sizes {sizes}")
        size = sizes.pop()
        if expected_dim is not None and size != expected_dim:
            raise CollectionMismatchError(f"{where} has vectors of size {size}, not dim={expected_dim}")
        return size

    def _create(self, dim: int) -> None:
        params = models.VectorParams(size=dim, distance=models.Distance.COSINE, on_disk=self.on_disk or None)
        metadata = {INFO_METADATA_KEY: self._pending_info} if self._pending_info is not None else None
        self.client.create_collection(
            self.collection, vectors_config={s: params for s in STREAMS}, metadata=metadata
        )
        with warnings.catch_warnings():
            # embedded mode warns that indexes do nothing there; they matter on a server
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for key in _KEYWORD_INDEXES:
                self.client.create_payload_index(
                    self.collection, key, field_schema=models.PayloadSchemaType.KEYWORD, wait=True
                )
        self._dim = dim
        self._pending_info = None

    def set_info(self, info: Mapping[str, Any]) -> None:
        """Record collection-level facts (model id, revision, dim...) next to the vectors.

        Replaces the previous info. Stored in the collection metadata, so it is kept only once the
        collection exists; before that (no ``dim`` and no upsert yet) it waits in memory and is
        written when the collection is created.
        """
        info = dict(info)
        if self._refresh():
            self.client.update_collection(self.collection, metadata={INFO_METADATA_KEY: info})
        else:
            self._pending_info = info

    def get_info(self) -> dict[str, Any]:
        """The dict last given to :meth:`set_info`, or ``{}``."""
        if not self._refresh():
            return dict(self._pending_info or {})
        metadata = self.client.get_collection(self.collection).config.metadata or {}
        return dict(metadata.get(INFO_METADATA_KEY) or {})

    # ------------------------------------------------------------------ writes

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Mapping[str, np.ndarray]],
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Insert or replace items, each with the streams it has.

        Everything is validated before anything is written, so a bad item does not leave half a
        batch behind.

        Args:
            ids: Caller ids; an id upserted again replaces its point.
            vectors: Per item, stream name -> 1-D vector of size ``dim``.
            payloads: Per item, any of ``source``, ``start_s``, ``end_s``, ``segment_index``,
                ``metadata`` (a dict).

        Raises:
            StoreInputError: Length mismatch, empty item, zero or non-finite vector, bad payload.
            UnknownStreamError: A stream name is not ``text``/``image``/``audio``/``video``.
            DimensionMismatchError: A vector's size differs from the collection's (or batch's).
        """
        if isinstance(ids, str):
            raise StoreInputError("ids must be a sequence of strings, not one string")
        if len(ids) != len(vectors) or (payloads is not None and len(payloads) != len(ids)):
            raise StoreInputError(
                f"length mismatch: {len(ids)} ids, {len(vectors)} vectors"
                + (f", {len(payloads)} payloads" if payloads is not None else "")
            )
        if not ids:
            return
        self._refresh()
        dim = self._dim
        arrays: list[dict[str, np.ndarray]] = []
        for i, (item_id, item) in enumerate(zip(ids, vectors, strict=True)):
            if not isinstance(item_id, str):
                raise StoreInputError(f"id must be a str, got {type(item_id).__name__}", index=i)
            if not isinstance(item, Mapping) or not item:
                raise StoreInputError("item has no streams", index=i)
            checked: dict[str, np.ndarray] = {}
            for stream, vector in item.items():
                if stream not in STREAMS:
                    raise UnknownStreamError(f"unknown stream; expected one of {list(STREAMS)}", index=i)
                arr = np.asarray(vector, dtype=np.float32)
                if arr.ndim != 1:
                    raise DimensionMismatchError(
                        f"expected a 1-D vector, got shape {arr.shape}", index=i, stream=stream
                    )
                if dim is None:
                    dim = arr.shape[0]
                if arr.shape[0] != dim:
                    raise DimensionMismatchError(
                        f"vector has {arr.shape[0]} dims, expected {dim}", index=i, stream=stream
                    )
                if not np.all(np.isfinite(arr)):
                    raise StoreInputError("vector has NaN or infinite values", index=i, stream=stream)
                if not np.any(arr):
                    raise StoreInputError("vector is all zeros; cosine is undefined", index=i, stream=stream)
                checked[stream] = arr
            arrays.append(checked)
        clean_payloads = [
            _payload(i, item_id, arrays[i], payloads[i] if payloads is not None else None)
            for i, item_id in enumerate(ids)
        ]
        if self._dim is None:
            assert dim is not None
            self._create(dim)
        for start in range(0, len(ids), self.write_batch_size):
            stop = start + self.write_batch_size
            points = [
                models.PointStruct(
                    id=point_id(ids[i]),
                    vector={s: v.tolist() for s, v in arrays[i].items()},
                    payload=clean_payloads[i],
                )
                for i in range(start, min(stop, len(ids)))
            ]
            self.client.upsert(self.collection, points=points, wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete items by caller id; unknown ids are ignored."""
        if isinstance(ids, str):
            raise StoreInputError("ids must be a sequence of strings, not one string")
        if not ids or not self._refresh():
            return
        self.client.delete(
            self.collection, points_selector=models.PointIdsList(points=[point_id(i) for i in ids]), wait=True
        )

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        """Number of stored items (exact)."""
        if not self._refresh():
            return 0
        return self.client.count(self.collection, exact=True).count

    def get(self, ids: Sequence[str]) -> list[StoredPoint | None]:
        """Stored points in the order of ``ids``; ``None`` where an id is unknown."""
        if isinstance(ids, str):
            raise StoreInputError("ids must be a sequence of strings, not one string")
        if not ids or not self._refresh():
            return [None] * len(ids)
        records = self.client.retrieve(
            self.collection, ids=[point_id(i) for i in ids], with_payload=True, with_vectors=True
        )
        by_id = {str(r.id): r for r in records}
        out: list[StoredPoint | None] = []
        for caller_id in ids:
            record = by_id.get(point_id(caller_id))
            if record is None:
                out.append(None)
                continue
            vectors = record.vector if isinstance(record.vector, Mapping) else {}
            out.append(
                StoredPoint(
                    id=caller_id,
                    payload=dict(record.payload or {}),
                    vectors={s: np.asarray(v, dtype=np.float32) for s, v in vectors.items()},
                )
            )
        return out

    def search(
        self,
        query_vector: np.ndarray,
        *,
        streams: Sequence[str] | None = None,
        fusion: FusionMode = "mean",
        weights: Mapping[str, float] | None = None,
        limit: int = 10,
        filter: FilterLike | None = None,
        oversampling: float | None = None,
    ) -> list[Hit]:
        """Best items for a query, scoring each stream separately and fusing the scores.

        Args:
            query_vector: 1-D query embedding of size ``dim``.
            streams: Streams to score on; ``["audio"]`` alone is the paper's Audio-only setting.
                Default: all.
            fusion: ``mean`` (default): Σ w·cos / Σ w over the selected streams a point has, exact.
                ``max``: best w·cos among them, exact. ``rrf`` / ``dbsf``: Qdrant's native
                rank / distribution-based fusion of the per-stream result lists.
            weights: Per-stream weights (default 1); ``rrf`` uses them as weighted RRF, ``dbsf``
                does not take any.
            limit: Number of hits.
            filter: A Qdrant ``Filter`` or ``{payload_key: value}`` (``metadata.<key>`` for user
                data), see :func:`to_filter`.
            oversampling: Candidates per stream as a multiple of ``limit`` (default: the store's).

        Returns:
            Hits, best first; ``[]`` when the collection is empty or not created yet.
        """
        plan = self._plan(query_vector, streams, fusion, weights, limit, filter, oversampling)
        if plan is None:
            return []
        per_stream = math.ceil(limit * plan.oversampling)
        if fusion in ("rrf", "dbsf"):
            response = self.client.query_points(
                self.collection,
                prefetch=plan.prefetch(per_stream),
                query=_fusion_query(fusion, plan.weights, weights is not None),
                query_filter=plan.filter,
                limit=limit,
                with_payload=True,
                with_vectors=list(plan.streams),
            )
            return self._native_hits(response.points, plan)
        return self._exact_hits(plan, fusion, per_stream)[:limit]

    def search_groups(
        self,
        query_vector: np.ndarray,
        *,
        group_by: str = PayloadKey.SOURCE,
        group_size: int = 3,
        limit: int = 10,
        streams: Sequence[str] | None = None,
        fusion: FusionMode = "mean",
        weights: Mapping[str, float] | None = None,
        filter: FilterLike | None = None,
        oversampling: float | None = None,
    ) -> list[HitGroup]:
        """Best groups (by default sources: a video with its segments), each with its best hits.

        ``rrf`` / ``dbsf`` use Qdrant's ``query_points_groups``. ``mean`` / ``max`` scores are
        computed here, so Qdrant cannot group by them: candidates (``limit * group_size *
        oversampling`` per stream) are scored exactly and grouped client-side. Points whose
        ``group_by`` value is missing or not a string/integer belong to no group, as in Qdrant.
        """
        if group_size < 1:
            raise StoreInputError(f"group_size must be >= 1, got {group_size}")
        plan = self._plan(query_vector, streams, fusion, weights, limit, filter, oversampling)
        if plan is None:
            return []
        per_stream = math.ceil(limit * group_size * plan.oversampling)
        if fusion in ("rrf", "dbsf"):
            result = self.client.query_points_groups(
                self.collection,
                group_by=group_by,
                prefetch=plan.prefetch(per_stream),
                query=_fusion_query(fusion, plan.weights, weights is not None),
                query_filter=plan.filter,
                limit=limit,
                group_size=group_size,
                with_payload=True,
                with_vectors=list(plan.streams),
            )
            return [
                HitGroup(key=group.id, hits=tuple(self._native_hits(group.hits, plan)))
                for group in result.groups
            ]
        groups: dict[str | int, list[Hit]] = {}
        for hit in self._exact_hits(plan, fusion, per_stream):
            for key in _group_keys(hit.payload, group_by):
                members = groups.setdefault(key, [])
                if len(members) < group_size:
                    members.append(hit)
        # hits arrive best first, so dict order is already the order of each group's best hit
        return [HitGroup(key=key, hits=tuple(hits)) for key, hits in list(groups.items())[:limit]]

    # ------------------------------------------------------------------ search helpers

    def _plan(
        self,
        query_vector: np.ndarray,
        streams: Sequence[str] | None,
        fusion: str,
        weights: Mapping[str, float] | None,
        limit: int,
        filter: FilterLike | None,
        oversampling: float | None,
    ) -> _Plan | None:
        """Validate a query; ``None`` means there is nothing to search yet."""
        if fusion not in FUSION_MODES:
            raise StoreInputError(f"fusion must be one of {list(FUSION_MODES)}, got {fusion!r}")
        selected = resolve_streams(streams)
        weight_arr = resolve_weights(selected, weights)
        if fusion == "dbsf" and weights is not None:
            raise StoreInputError(
                "fusion='dbsf' takes no weights (Qdrant's DBSF is unweighted); use rrf or mean"
            )
        if limit < 1:
            raise StoreInputError(f"limit must be >= 1, got {limit}")
        oversampling = self.oversampling if oversampling is None else oversampling
        _check_oversampling(oversampling)
        query = np.asarray(query_vector, dtype=np.float32)
        if query.ndim != 1:
            raise DimensionMismatchError(f"query must be a 1-D vector, got shape {query.shape}")
        if not np.all(np.isfinite(query)) or not np.any(query):
            raise StoreInputError("query vector is zero or has NaN/infinite values")
        qdrant_filter = to_filter(filter)
        if not self._refresh():
            return None
        if query.shape[0] != self._dim:
            raise DimensionMismatchError(
                f"query has {query.shape[0]} dims, collection '{self.collection}' has {self._dim}"
            )
        return _Plan(query.tolist(), selected, weight_arr, qdrant_filter, oversampling)

    def _exact_hits(self, plan: _Plan, fusion: str, per_stream: int) -> list[Hit]:
        """Union of per-stream candidates, scored exactly, best first."""
        response = self.client.query_points(
            self.collection,
            prefetch=plan.prefetch(per_stream),
            # RRF here only unions and deduplicates the candidates; its scores are discarded
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            query_filter=plan.filter,
            limit=per_stream * len(plan.streams),
            with_payload=True,
            with_vectors=list(plan.streams),
        )
        points = response.points
        scores = score_matrix(np.asarray(plan.query), [_vectors(p) for p in points], plan.streams)
        fused = fuse(scores, plan.weights, "max" if fusion == "max" else "mean")
        hits = [
            _hit(point, float(fused[i]), scores[i], plan.streams)
            for i, point in enumerate(points)
            if not np.isnan(fused[i])
        ]
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits

    def _native_hits(self, points: Sequence[models.ScoredPoint], plan: _Plan) -> list[Hit]:
        scores = score_matrix(np.asarray(plan.query), [_vectors(p) for p in points], plan.streams)
        return [_hit(point, float(point.score), scores[i], plan.streams) for i, point in enumerate(points)]

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the client if the store created it (a passed-in client stays open)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> OmniStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OmniStore(collection={self.collection!r}, dim={self._dim})"


def _check_oversampling(oversampling: float) -> None:
    if not (math.isfinite(oversampling) and oversampling >= 1.0):
        raise StoreInputError(f"oversampling must be >= 1, got {oversampling}")


def _fusion_query(fusion: str, weights: np.ndarray, weighted: bool) -> models.Query:
    if fusion == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    if weighted:
        return models.RrfQuery(rrf=models.Rrf(weights=[float(w) for w in weights]))
    return models.FusionQuery(fusion=models.Fusion.RRF)


def _payload(
    index: int, item_id: str, vectors: Mapping[str, np.ndarray], given: Mapping[str, Any] | None
) -> dict:
    given = dict(given or {})
    unknown = set(given) - CALLER_PAYLOAD_KEYS
    if unknown:
        raise StoreInputError(
            f"unknown payload key(s) {sorted(unknown)}; allowed {sorted(CALLER_PAYLOAD_KEYS)} "
            "(put free-form data under 'metadata')",
            index=index,
        )
    metadata = given.get(PayloadKey.METADATA)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise StoreInputError("payload 'metadata' must be a dict", index=index)
    return {
        PayloadKey.ID: item_id,
        PayloadKey.SOURCE: given.get(PayloadKey.SOURCE),
        PayloadKey.MODALITIES: [s for s in STREAMS if s in vectors],
        PayloadKey.START_S: given.get(PayloadKey.START_S),
        PayloadKey.END_S: given.get(PayloadKey.END_S),
        PayloadKey.SEGMENT_INDEX: given.get(PayloadKey.SEGMENT_INDEX),
        PayloadKey.METADATA: dict(metadata or {}),
    }


def _vectors(point: models.ScoredPoint) -> Mapping[str, Any]:
    return point.vector if isinstance(point.vector, Mapping) else {}


def _hit(point: models.ScoredPoint, score: float, scores: np.ndarray, streams: Sequence[Stream]) -> Hit:
    payload = dict(point.payload or {})
    return Hit(
        id=str(payload.get(PayloadKey.ID, point.id)),
        score=score,
        payload=payload,
        stream_scores={s: float(scores[j]) for j, s in enumerate(streams) if not np.isnan(scores[j])},
    )


def _group_keys(payload: Mapping[str, Any], group_by: str) -> list[str | int]:
    value: Any = payload
    for part in group_by.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]
