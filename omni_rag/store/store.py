"""``OmniStore``: one named vector per modality stream, fused at query time, on either engine.

Design choices (each one is a place where an alternative was weighed):

* **One API, two engines.** Embedded (``path=`` or ``":memory:"``) runs on Qdrant Edge in-process;
  ``url=`` (or a ``QdrantClient`` passed as ``client=``) runs on qdrant-client against a server or
  cluster. This module validates, plans and fuses; :mod:`omni_rag.store.engine` is the seam, and
  nothing outside :mod:`omni_rag.store` learns which engine runs.
* **``mean`` is an index search, then exact.** For unit vectors Σ w·cos / Σ w over the streams a
  point has equals one inner product with the point's fused vector (its unit audio and video
  vectors laid end to end) and the query repeated per block, scaled by w / Σ w. There is one
  query per subset of the selected streams that some point has (filtered on the indexed
  ``stream_set`` payload), so points lacking a selected stream are scored by the mean over what
  they have, as documented, never punished with a zero. The best candidates are rescored exactly
  by the engine (an exact search restricted to their ids), so results equal brute force whenever
  the index finds them; ``hnsw_ef`` raises the index's effort and ``exact=True`` removes its
  approximation.
* **``max``** unions each stream's top ``limit x oversampling`` (a point's best stream must rank
  there) and scores exactly. **``rrf`` / ``dbsf``** are Qdrant's native fusion; the exact
  per-stream scores of the hits only fill :attr:`Hit.stream_scores`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
from qdrant_client import QdrantClient, models

from omni_rag.store.client_engine import ClientEngine
from omni_rag.store.edge_engine import INDEX_THRESHOLD, EdgeEngine
from omni_rag.store.engine import (
    FUSED,
    FUSED_STREAMS,
    Engine,
    EnginePoint,
    EngineRecord,
    FusedQuery,
    IndexInfo,
    Nearest,
    collection_vectors,
)
from omni_rag.store.errors import (
    CollectionMismatchError,
    DimensionMismatchError,
    StoreInputError,
    StoreLockedError,
    UnknownStreamError,
)
from omni_rag.store.filters import (
    FilterLike,
    all_of,
    check_collection_name,
    in_stream_sets,
    none_of,
    point_id,
    stream_set,
    streams_in_set,
    to_filter,
)
from omni_rag.store.fusion import fuse, resolve_streams, resolve_weights, unit
from omni_rag.store.legacy import check_not_legacy
from omni_rag.store.models import (
    CALLER_PAYLOAD_KEYS,
    FUSION_MODES,
    STREAMS,
    FusionMode,
    Hit,
    HitGroup,
    PayloadKey,
    StoredPoint,
    Stream,
)
from omni_rag.store.sharing import ServedEngine, served_or_raise

logger = logging.getLogger(__name__)

#: Limits above this are clamped to the point count (an engine request holds a 64-bit count at most).
_LARGE_LIMIT = 100_000
#: Rounds of re-querying past full groups in :meth:`OmniStore.search_groups`.
_GROUP_ROUNDS = 8

#: HNSW effort of the fused audio+video query when the caller sets none. Its 4,096-d inner
#: products are flatter than one stream's cosines (more near-ties), so the engine's default
#: effort found 0.93 of the exact top 10 at 100k points where 256 finds 0.965 (bench_store.py).
FUSED_HNSW_EF = 256


@dataclass(frozen=True)
class _Plan:
    """A validated query: what every search path needs."""

    query: np.ndarray
    streams: tuple[Stream, ...]
    weights: np.ndarray
    filter: models.Filter | None
    oversampling: float
    hnsw_ef: int | None
    exact: bool
    sets: tuple[frozenset[str], ...] = (frozenset(STREAMS),)

    @cached_property
    def present(self) -> frozenset[str]:
        """Streams at least one point has."""
        return frozenset().union(*self.sets)

    def searched(self) -> list[tuple[Stream, float]]:
        """Selected streams with a positive weight that some point has: the ones worth a query."""
        pairs = zip(self.streams, self.weights, strict=True)
        return [(s, float(w)) for s, w in pairs if w > 0 and s in self.present]

    def nearest(
        self, using: str, vector: np.ndarray, limit: int, extra: models.Filter | None, *, fused: bool = False
    ) -> Nearest:
        """An index query for candidates; ``fused=True`` when its score already is the fused score.

        Those come back as bare ids and scores, and only the best get their payload afterwards.
        """
        return Nearest(
            using=using,
            vector=vector,
            limit=limit,
            filter=all_of(self.filter, extra),
            hnsw_ef=self.hnsw_ef,
            exact=self.exact,
            with_payload=not fused,
        )


class OmniStore:
    """A collection holding one named vector per modality stream, fused at query time.

    Args:
        collection: Collection name (letters, digits, ``_``, ``-``, ``.``; checked here).
        location: ``":memory:"`` (embedded, temporary) or a server URL.
        path: Folder of a persistent embedded store (Qdrant Edge).
        url: Qdrant server or cluster URL (qdrant-client).
        api_key: API key of the server.
        prefer_grpc: Use gRPC with a server: vectors travel as binary.
        client: An existing ``QdrantClient`` (a server, or its ``":memory:"`` mode); never closed here.
        dim: Vector size. Given: the collection is created now (or checked if it exists).
            Omitted: taken from the existing collection or from the first upsert.
        on_disk: Keep vectors on disk (server only).
        write_batch_size: Points per write request, bounding request size and memory.
        oversampling: Default candidates per index query as a multiple of ``limit``.
        hnsw_ef: Default HNSW search effort (``None``: the engine's default).
        timeout: Request timeout in seconds for a server.
        index_threshold: Embedded stores index new points (HNSW) once this many were written
            since the last build, during the write that passes it, so searches stay at indexed
            speed without a call to :meth:`optimize`; ``0`` leaves building to :meth:`optimize`.
            A server indexes by itself.
        show_progress_bar: Show a bar on stderr while such a build runs (``None``: at INFO
            logging, as the embedder's bars).

    Raises:
        CollectionNameError: The name cannot be a collection.
        CollectionMismatchError: The collection exists with another layout or size.
        StoreLockedError: The embedded folder is open in another process.
        LegacyStoreError: The folder holds an omni-rag 0.1 store (run ``omni-rag migrate``).
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
        hnsw_ef: int | None = None,
        timeout: int | None = None,
        index_threshold: int = INDEX_THRESHOLD,
        show_progress_bar: bool | None = None,
    ) -> None:
        check_collection_name(collection)
        targets = [x for x in (location, path, url) if x is not None]
        if client is not None and (targets or api_key is not None):
            raise StoreInputError("pass either client= or location=/path=/url=/api_key=, not both")
        if len(targets) > 1:
            raise StoreInputError("pass only one of location=, path=, url=")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise StoreInputError(f"dim must be an int >= 1, got {dim!r}")
        if (
            isinstance(write_batch_size, bool)
            or not isinstance(write_batch_size, int)
            or write_batch_size < 1
        ):
            raise StoreInputError(f"write_batch_size must be >= 1, got {write_batch_size}")
        _check_oversampling(oversampling)
        _check_hnsw_ef(hnsw_ef)
        if isinstance(index_threshold, bool) or not isinstance(index_threshold, int) or index_threshold < 0:
            raise StoreInputError(f"index_threshold must be an int >= 0, got {index_threshold!r}")
        self.collection = collection
        self.index_threshold = index_threshold
        self.show_progress_bar = show_progress_bar
        self.write_batch_size = write_batch_size
        self.oversampling = oversampling
        self.hnsw_ef = hnsw_ef
        self._open_args: dict[str, Any] = dict(
            location=location, path=path, url=url, api_key=api_key, prefer_grpc=prefer_grpc, timeout=timeout
        )
        self._engine = _make_engine(collection, self._open_args, client, on_disk, index_threshold)
        self._shared_client = client
        self._dim: int | None = None
        self._pending_info: dict[str, Any] | None = None
        if not self._refresh(dim) and dim is not None:
            self._create(dim)

    # ------------------------------------------------------------------ collection

    @property
    def dim(self) -> int | None:
        """Vector size, or ``None`` while the collection does not exist yet."""
        return self._dim

    @property
    def engine(self) -> str:
        """``"edge"`` (embedded) or ``"qdrant-client"`` (server), for logs and ``omni-rag info``."""
        return "edge" if isinstance(self._engine, (EdgeEngine, ServedEngine)) else "qdrant-client"

    def _refresh(self, expected_dim: int | None = None) -> bool:
        """Load and check the collection if it exists; another process may have created it."""
        if self._dim is not None:
            return True
        if not self._engine.exists():
            return False
        self._dim = self._check_collection(expected_dim)
        return True

    def _check_collection(self, expected_dim: int | None) -> int:
        vectors = self._engine.vectors()
        where = f"collection '{self.collection}'"
        missing = [s for s in STREAMS if s not in vectors]
        if missing:
            raise CollectionMismatchError(f"{where} lacks named vector(s) {missing}; has {list(vectors)}")
        wrong = {s: vectors[s].distance for s in STREAMS if vectors[s].distance != "cosine"}
        if wrong:
            raise CollectionMismatchError(f"{where} uses distance {wrong}; expected Cosine")
        sizes = {vectors[s].size for s in STREAMS}
        if len(sizes) != 1:
            raise CollectionMismatchError(f"{where} has streams of different sizes {sizes}")
        size = sizes.pop()
        if expected_dim is not None and size != expected_dim:
            raise CollectionMismatchError(f"{where} has vectors of size {size}, not dim={expected_dim}")
        lacking = [s.name for s in collection_vectors(size) if s.name not in vectors]
        if lacking:
            raise CollectionMismatchError(
                f"{where} was created by omni-rag 0.1 and lacks the fused vectors {lacking} that exact "
                "late fusion needs; copy it into a new collection with `omni-rag migrate`"
            )
        return size

    def _create(self, dim: int) -> None:
        self._engine.create(dim, self._pending_info)
        self._dim = dim
        self._pending_info = None

    def set_info(self, info: Mapping[str, Any]) -> None:
        """Record collection-level facts (model id, revision, dim...) next to the vectors.

        Replaces the previous info. Kept only once the collection exists; before that (no ``dim``
        and no upsert yet) it waits in memory and is written when the collection is created.
        """
        if self._refresh():
            self._engine.set_metadata(dict(info))
        else:
            self._pending_info = dict(info)

    def get_info(self) -> dict[str, Any]:
        """The dict last given to :meth:`set_info`, or ``{}``."""
        if not self._refresh():
            return dict(self._pending_info or {})
        return self._engine.get_metadata()

    def collections(self) -> list[str]:
        """Names of the collections in the same store folder or server."""
        return self._engine.collections()

    def optimize(self, *, show_progress_bar: bool | None = None) -> None:
        """Index every point not indexed yet (HNSW) now, instead of at the next ``index_threshold``.

        Embedded stores build by themselves as points are written (see ``index_threshold``);
        points written since the last build are searched exactly, correct but slower. A server
        optimises in the background, so this returns at once there.
        """
        self._engine.optimize(self._show(show_progress_bar))

    def index_info(self) -> IndexInfo:
        """Points, indexed vectors and segments as the engine reports them (``0`` before creation)."""
        if not self._refresh():
            return IndexInfo(points=0, indexed_vectors=0, segments=0)
        return self._engine.index_info()

    def _show(self, show_progress_bar: bool | None) -> bool:
        choice = self.show_progress_bar if show_progress_bar is None else show_progress_bar
        return logger.getEffectiveLevel() <= logging.INFO if choice is None else choice

    def sibling(self, collection: str, *, dim: int | None = None) -> OmniStore:
        """Another collection in the same place (folder, server, client) as this one."""
        if self._shared_client is not None or isinstance(self._engine, ClientEngine):
            client = self._shared_client or self._engine.client  # type: ignore[attr-defined]
            return OmniStore(collection, client=client, dim=dim)
        return OmniStore(
            collection,
            path=self._open_args["path"],
            dim=dim,
            index_threshold=self.index_threshold,
            show_progress_bar=self.show_progress_bar,
        )

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
            ids: Caller ids, unique within the call; an id upserted again replaces its point.
            vectors: Per item, stream name -> 1-D real vector of size ``dim``.
            payloads: Per item, any of ``source``, ``start_s``, ``end_s``, ``segment_index``,
                ``metadata`` (a dict).

        Raises:
            StoreInputError: Length mismatch, repeated id, empty item, zero, complex or
                non-finite vector, bad payload.
            UnknownStreamError: A stream name is not ``text``/``image``/``audio``/``video``.
            DimensionMismatchError: A vector's size differs from the collection's (or batch's).
            StoreWriteError: The engine failed to write (disk full...); earlier batches are kept.
        """
        _check_id_list(ids)
        if len(ids) != len(vectors) or (payloads is not None and len(payloads) != len(ids)):
            raise StoreInputError(
                f"length mismatch: {len(ids)} ids, {len(vectors)} vectors"
                + (f", {len(payloads)} payloads" if payloads is not None else "")
            )
        if not ids:
            return
        self._refresh()
        arrays, dim = _check_vectors(vectors, self._dim)
        points = [
            _engine_point(
                item_id, arrays[i], _payload(i, item_id, arrays[i], payloads[i] if payloads else None)
            )
            for i, item_id in enumerate(ids)
        ]
        if self._dim is None:
            self._create(dim)
        for start in range(0, len(points), self.write_batch_size):
            self._engine.upsert(points[start : start + self.write_batch_size])
        self._engine.keep_indexed(self._show(None))

    def delete(self, ids: Sequence[str]) -> None:
        """Delete items by caller id; unknown ids are ignored."""
        if isinstance(ids, str):
            raise StoreInputError("ids must be a sequence of strings, not one string")
        if ids and self._refresh():
            self._engine.delete([point_id(i) for i in ids])

    def delete_where(self, filter: FilterLike, *, batch_size: int = 256) -> int:
        """Delete every point matching ``filter`` (a document and all its segments); returns how many.

        Matching ids are read first, then deleted by id, so an interrupted call leaves only whole
        points behind and running it again deletes the rest.

        Raises:
            StoreInputError: ``filter`` is ``None`` or empty (use :meth:`drop` to delete everything).
        """
        qdrant_filter = to_filter(filter)
        if qdrant_filter is None or not (
            qdrant_filter.must or qdrant_filter.should or qdrant_filter.must_not
        ):
            raise StoreInputError("delete_where needs a non-empty filter; drop() deletes everything")
        ids = [p.id for p in self.scroll(batch_size, filter=qdrant_filter, with_vectors=False)]
        for start in range(0, len(ids), batch_size):
            self.delete(ids[start : start + batch_size])
        return len(ids)

    # ------------------------------------------------------------------ reads

    def count(self, filter: FilterLike | None = None) -> int:
        """Number of stored items (exact), optionally only those matching ``filter``."""
        if not self._refresh():
            return 0
        return self._engine.count(to_filter(filter))

    def get(self, ids: Sequence[str], *, with_vectors: bool = True) -> list[StoredPoint | None]:
        """Stored points in the order of ``ids``; ``None`` where an id is unknown.

        ``with_vectors=False`` leaves :attr:`StoredPoint.vectors` empty (payload only, 8 KB less
        per stream and point to read).
        """
        if isinstance(ids, str):
            raise StoreInputError("ids must be a sequence of strings, not one string")
        if not ids or not self._refresh():
            return [None] * len(ids)
        vectors: list[str] | bool = list(STREAMS) if with_vectors else False
        records = self._engine.retrieve([point_id(i) for i in ids], with_vectors=vectors)
        by_id = {r.id: r for r in records}
        out: list[StoredPoint | None] = []
        for caller_id in ids:
            record = by_id.get(point_id(caller_id))
            out.append(
                None
                if record is None
                else StoredPoint(id=caller_id, payload=_public(record.payload), vectors=_streams_of(record))
            )
        return out

    def scroll(
        self, batch_size: int = 256, *, filter: FilterLike | None = None, with_vectors: bool = True
    ) -> Iterator[StoredPoint]:
        """Every stored point (payload and stream vectors), page by page: for export and migration.

        ``filter`` keeps the points matching it (see :func:`to_filter`); ``with_vectors=False``
        reads payloads only.
        """
        qdrant_filter = to_filter(filter)
        if not self._refresh():
            return
        offset: str | None = None
        while True:
            records, offset = self._engine.scroll(offset, batch_size, qdrant_filter, with_vectors)
            for record in records:
                caller_id = str(record.payload.get(PayloadKey.ID, record.id))
                yield StoredPoint(id=caller_id, payload=_public(record.payload), vectors=_streams_of(record))
            if offset is None:
                return

    def copy_to(self, target: OmniStore, *, batch_size: int = 256) -> int:
        """Copy every point and the collection info into ``target`` (another engine or place).

        Re-running replaces rather than duplicates (same ids), so an interrupted copy is resumed
        by running it again. Returns the number of points copied.
        """
        target.set_info(self.get_info())
        copied, batch = 0, []
        for point in self.scroll(batch_size):
            batch.append(point)
            if len(batch) == batch_size:
                copied += _copy_batch(target, batch)
                batch = []
        return copied + (_copy_batch(target, batch) if batch else 0)

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
        hnsw_ef: int | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        """Best items for a query, scoring each stream separately and fusing the scores.

        Args:
            query_vector: 1-D query embedding of size ``dim``.
            streams: Streams to score on; ``["audio"]`` alone is the paper's Audio-only setting.
                Default: all.
            fusion: ``mean`` (default): Σ w·cos / Σ w over the selected streams a point has.
                ``max``: best w·cos among them. ``rrf`` / ``dbsf``: Qdrant's native rank /
                distribution-based fusion of the per-stream result lists.
            weights: Per-stream weights (default 1); ``rrf`` uses them as weighted RRF, ``dbsf``
                takes none.
            limit: Number of hits.
            filter: A Qdrant ``Filter`` or ``{payload_key: value}`` (``metadata.<key>`` for user
                data), see :func:`to_filter`.
            oversampling: Candidates per index query as a multiple of ``limit``.
            hnsw_ef: HNSW search effort (default: the store's); higher finds more of the true top k.
            exact: Search without the index's approximation (a full scan): brute-force results.

        Returns:
            Hits, best first; ``[]`` when the collection is empty or not created yet.
        """
        plan = self._plan(query_vector, streams, fusion, weights, limit, filter, oversampling, hnsw_ef, exact)
        if plan is None:
            return []
        limit = self._clamped(limit)
        per_query = math.ceil(limit * plan.oversampling)
        if fusion in ("rrf", "dbsf"):
            return self._native_hits(plan, fusion, limit, per_query, weights is not None)
        return self._exact_hits(plan, fusion, per_query, keep=limit if fusion == "mean" else None)[:limit]

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
        hnsw_ef: int | None = None,
        exact: bool = False,
    ) -> list[HitGroup]:
        """Best groups (by default sources: a video with its segments), each with its best hits.

        Candidates (``limit x group_size x oversampling`` per index query) are grouped here; when
        fewer than ``limit`` groups come back and more candidates exist, the query runs again
        excluding the groups already full, so one source with many segments cannot crowd the
        others out. Points without a ``source`` (text documents) are their own group, keyed by id.
        For ``rrf``/``dbsf`` groups found in a later round rank after the earlier ones, since
        their fused scores come from another candidate set.
        """
        if group_size < 1:
            raise StoreInputError(f"group_size must be >= 1, got {group_size}")
        plan = self._plan(query_vector, streams, fusion, weights, limit, filter, oversampling, hnsw_ef, exact)
        if plan is None:
            return []
        limit = self._clamped(limit)
        group_size = self._clamped(group_size)
        per_query = math.ceil(limit * group_size * plan.oversampling)
        groups: dict[_GroupKey, list[Hit]] = {}
        for _ in range(_GROUP_ROUNDS):
            full = [k for k, hits in groups.items() if len(hits) >= group_size]
            round_plan = _excluding(plan, group_by, full)
            if fusion in ("rrf", "dbsf"):
                hits = self._native_hits(round_plan, fusion, per_query, per_query, weights is not None)
            else:
                hits = self._exact_hits(round_plan, fusion, per_query)
            _add_to_groups(groups, hits, group_by, group_size)
            if len(groups) >= limit or len(hits) < per_query:
                break
        # hits arrive best first, so dict order is the order of each group's best hit
        return [HitGroup(key=key[1], hits=tuple(hits)) for key, hits in list(groups.items())[:limit]]

    # ------------------------------------------------------------------ search helpers

    def _clamped(self, limit: int) -> int:
        """A limit past what any engine request can hold is the point count: no search returns more."""
        return limit if limit <= _LARGE_LIMIT else max(1, min(limit, self.count()))

    def _plan(
        self,
        query_vector: np.ndarray,
        streams: Sequence[str] | None,
        fusion: str,
        weights: Mapping[str, float] | None,
        limit: int,
        filter: FilterLike | None,
        oversampling: float | None,
        hnsw_ef: int | None,
        exact: bool,
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
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreInputError(f"limit must be an int >= 1, got {limit!r}")
        oversampling = self.oversampling if oversampling is None else oversampling
        _check_oversampling(oversampling)
        _check_hnsw_ef(hnsw_ef)
        query = _check_query(query_vector)
        qdrant_filter = to_filter(filter)
        if not self._refresh():
            return None
        if query.shape[0] != self._dim:
            raise DimensionMismatchError(
                f"query has {query.shape[0]} dims, collection '{self.collection}' has {self._dim}"
            )
        effort = hnsw_ef if hnsw_ef is not None else self.hnsw_ef
        sets = tuple(streams_in_set(v) for v in sorted(self._engine.stream_sets()))
        if not sets:
            return None
        return _Plan(unit(query), selected, weight_arr, qdrant_filter, oversampling, effort, exact, sets)

    def _exact_hits(self, plan: _Plan, fusion: str, per_query: int, keep: int | None = None) -> list[Hit]:
        """Index candidates (per stream combination for mean, per stream for max), scored exactly.

        Candidates whose index score already is their fused score (one stream, or the audio+video
        fused vector) come as bare ids; only the best ``keep`` (all when ``None``) get their payload
        and their exact per-stream scores (:attr:`Hit.stream_scores`).
        """
        requests = _mean_requests(plan, per_query) if fusion == "mean" else _max_requests(plan, per_query)
        if any(r.with_payload for r in requests):
            keep = None  # per-stream candidates carry no fused score to pick the best by: rescore all
        seen: dict[str, EngineRecord] = {}
        for results in self._engine.nearest(requests) if requests else []:
            for record in results:
                seen.setdefault(record.id, record)
        records = self._with_payload(_best(list(seen.values()), keep))
        scores = self._stream_scores(plan, records)
        fused = fuse(scores, plan.weights, "max" if fusion == "max" else "mean")
        hits = [
            _hit(record, float(fused[i]), scores[i], plan.streams)
            for i, record in enumerate(records)
            if not np.isnan(fused[i])
        ]
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits

    def _with_payload(self, records: list[EngineRecord]) -> list[EngineRecord]:
        missing = [r.id for r in records if not r.payload]
        if not missing:
            return records
        fetched = {r.id: r for r in self._engine.retrieve(missing, with_vectors=False)}
        return [fetched.get(r.id, r) if not r.payload else r for r in records]

    def _stream_scores(self, plan: _Plan, records: Sequence[EngineRecord]) -> np.ndarray:
        """Exact cosine per candidate and stream (``NaN`` where a point lacks the stream).

        The engine scores the candidates itself (an exact search restricted to their ids, on the
        float32 originals): the same numbers as fetching the vectors and scoring them here, without
        shipping 8 KB per stream per candidate, which cost more than the index search.
        """
        out = np.full((len(records), len(plan.streams)), np.nan, dtype=np.float64)
        searched = [j for j, s in enumerate(plan.streams) if s in plan.present]
        if not records or not searched:
            return out
        row = {r.id: i for i, r in enumerate(records)}
        only = models.Filter(must=[models.HasIdCondition(has_id=list(row))])
        requests = [
            Nearest(plan.streams[j], plan.query, len(records), only, exact=True, with_payload=False)
            for j in searched
        ]
        for j, results in zip(searched, self._engine.nearest(requests), strict=True):
            for record in results:
                out[row[record.id], j] = record.score
        return out

    def _native_hits(self, plan: _Plan, fusion: str, limit: int, per_query: int, weighted: bool) -> list[Hit]:
        # streams no point has would add empty lists: leaving them out changes no fused score
        searched = [(s, w) for s, w in zip(plan.streams, plan.weights, strict=True) if s in plan.present]
        if not searched:
            return []
        query = FusedQuery(
            fusion="dbsf" if fusion == "dbsf" else "rrf",
            prefetch=tuple(plan.nearest(s, plan.query, per_query, None) for s, _ in searched),
            limit=limit,
            weights=tuple(float(w) for _, w in searched) if weighted else None,
        )
        records = self._engine.fused(query)
        scores = self._stream_scores(plan, records)
        return [_hit(r, float(r.score or 0.0), scores[i], plan.streams) for i, r in enumerate(records)]

    # ------------------------------------------------------------------ lifecycle

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        if self._refresh():
            self._engine.drop()
        self._dim = None

    def close(self) -> None:
        """Release the engine (files and locks, or the client if the store created it)."""
        self._engine.close()

    def __enter__(self) -> OmniStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OmniStore(collection={self.collection!r}, engine={self.engine!r}, dim={self._dim})"


def _make_engine(
    collection: str, args: Mapping[str, Any], client: QdrantClient | None, on_disk: bool, index_threshold: int
) -> Engine:
    if client is not None:
        return ClientEngine(collection, client, owns_client=False, on_disk=on_disk)
    location = args["location"]
    if args["url"] is not None or (location is not None and location != ":memory:"):
        made = QdrantClient(
            location=location,
            url=args["url"],
            api_key=args["api_key"],
            prefer_grpc=args["prefer_grpc"],
            timeout=args["timeout"],
        )
        return ClientEngine(collection, made, owns_client=True, on_disk=on_disk)
    if args["path"] is not None:
        check_not_legacy(args["path"], collection)
    root = args["path"]
    try:
        return EdgeEngine(collection, root, index_threshold)
    except StoreLockedError as locked:
        if root is None:
            raise
        # another process writes it: search through that process, or open here once it is gone
        served = served_or_raise(
            collection, Path(root), locked, lambda: EdgeEngine(collection, root, index_threshold)
        )
        return cast(Engine, served)


def _mean_requests(plan: _Plan, per_query: int) -> list[Nearest]:
    """Index queries for every subset U of the selected streams that some point has.

    Each is filtered to points whose selected streams are exactly U (by ``stream_set``; no filter
    when every point qualifies), so every point is scored by the mean over the selected streams it
    has, as documented, and a combination no point has costs no query. A single stream searches
    its own cosine vector; audio+video searches the fused vector with the query blocks weighted
    w / Σ_U w (one HNSW search for the exact weighted mean, at :data:`FUSED_HNSW_EF` unless the
    caller set the effort); other combinations, which only items mixing text or an image with
    audio/video have, take each stream's candidates (as ``max`` does). Candidates are rescored
    exactly by the caller.
    """
    weight: dict[str, float] = dict(plan.searched())
    active = frozenset(weight)
    requests = []
    for size in range(1, len(active) + 1):
        for used in itertools.combinations([s for s in STREAMS if s in active], size):
            matching = [c for c in plan.sets if c & active == frozenset(used)]
            if not matching:
                continue
            every = len(matching) == len(plan.sets)
            only = None if every else in_stream_sets([stream_set(c) for c in matching])
            if size == 1:
                requests.append(plan.nearest(used[0], plan.query, per_query, only, fused=True))
            elif used == FUSED_STREAMS:
                total = weight["audio"] + weight["video"]
                blocks = np.concatenate([plan.query * (weight[s] / total) for s in FUSED_STREAMS])
                fused = plan.nearest(FUSED, blocks, per_query, only, fused=True)
                requests.append(fused if plan.hnsw_ef is not None else replace(fused, hnsw_ef=FUSED_HNSW_EF))
            else:  # text/image with other streams (only Python callers make these): per-stream candidates
                requests.extend(plan.nearest(s, plan.query, per_query, only) for s in used)
    return requests


def _best(records: list[EngineRecord], keep: int | None) -> list[EngineRecord]:
    """The ``keep`` best candidates by their index (fused) score, twice ``keep`` for margin."""
    if keep is None or len(records) <= 2 * keep:
        return records
    ranked = sorted(records, key=lambda r: -(r.score if r.score is not None else -2.0))
    return ranked[: 2 * keep]


def _max_requests(plan: _Plan, per_query: int) -> list[Nearest]:
    return [plan.nearest(s, plan.query, per_query, None) for s, _ in plan.searched()]


_GroupKey = tuple[bool, str | int]
"""(keyed by the point's own id, value): text documents have no source and are their own group."""


def _excluding(plan: _Plan, group_by: str, keys: Sequence[_GroupKey]) -> _Plan:
    """The plan with the groups in ``keys`` filtered out, to page past groups already full."""
    shared = [value for own, value in keys if not own]
    own_ids = [value for own, value in keys if own]
    extra = all_of(none_of(group_by, shared), none_of(PayloadKey.ID, own_ids))
    return replace(plan, filter=all_of(plan.filter, extra)) if extra is not None else plan


def _add_to_groups(groups: dict[_GroupKey, list[Hit]], hits: Sequence[Hit], group_by: str, size: int) -> None:
    for hit in hits:
        for key in _group_keys(hit, group_by):
            members = groups.setdefault(key, [])
            if len(members) < size and all(m.id != hit.id for m in members):
                members.append(hit)


def _group_keys(hit: Hit, group_by: str) -> list[_GroupKey]:
    value: Any = hit.payload
    for part in group_by.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None and group_by == PayloadKey.SOURCE:
        return [(True, hit.id)]
    values = value if isinstance(value, list) else [value]
    return [(False, v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]


def _check_oversampling(oversampling: float) -> None:
    if not (math.isfinite(oversampling) and oversampling >= 1.0):
        raise StoreInputError(f"oversampling must be >= 1, got {oversampling}")


def _check_hnsw_ef(hnsw_ef: int | None) -> None:
    if hnsw_ef is not None and (isinstance(hnsw_ef, bool) or not isinstance(hnsw_ef, int) or hnsw_ef < 1):
        raise StoreInputError(f"hnsw_ef must be a positive int, got {hnsw_ef!r}")


def _check_query(query_vector: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(query_vector):
        raise StoreInputError("query vector is complex; embeddings are real")
    query = np.asarray(query_vector, dtype=np.float64)
    if query.ndim != 1:
        raise DimensionMismatchError(f"query must be a 1-D vector, got shape {query.shape}")
    if not np.all(np.isfinite(query)) or not np.any(query.astype(np.float32)):
        raise StoreInputError("query vector is zero or has NaN/infinite values")
    _check_norm(query.astype(np.float32))
    return query


def _check_norm(arr: np.ndarray, *, index: int | None = None, stream: str | None = None) -> None:
    """Refuse a vector whose float32 norm is not a normal float32 (denormal components): the
    engine normalises in float32, where such a vector becomes zero and scores 0 against itself."""
    norm = float(np.linalg.norm(arr.astype(np.float64)))
    if not np.float32(norm) >= np.finfo(np.float32).tiny or not np.isfinite(np.float32(norm)):
        raise StoreInputError(
            f"vector norm {norm:.3g} is not a normal float32 (between {np.finfo(np.float32).tiny:.3g} "
            f"and {np.finfo(np.float32).max:.3g}); cosine is undefined",
            index=index,
            stream=stream,
        )


def _check_id_list(ids: Sequence[str]) -> None:
    if isinstance(ids, str):
        raise StoreInputError("ids must be a sequence of strings, not one string")
    first: dict[str, int] = {}
    for i, item_id in enumerate(ids):
        if not isinstance(item_id, str):
            raise StoreInputError(f"id must be a str, got {type(item_id).__name__}", index=i)
        if item_id in first:
            raise StoreInputError(f"id {item_id!r} repeats item {first[item_id]}'s id in one upsert", index=i)
        first[item_id] = i


def _check_vectors(
    vectors: Sequence[Mapping[str, np.ndarray]], dim: int | None
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Validated float32 stream vectors per item, and the vector size they share."""
    arrays: list[dict[str, np.ndarray]] = []
    for i, item in enumerate(vectors):
        if not isinstance(item, Mapping) or not item:
            raise StoreInputError("item has no streams", index=i)
        checked: dict[str, np.ndarray] = {}
        for stream, vector in item.items():
            if stream not in STREAMS:
                raise UnknownStreamError(f"unknown stream; expected one of {list(STREAMS)}", index=i)
            if np.iscomplexobj(vector):
                raise StoreInputError("vector is complex; embeddings are real", index=i, stream=stream)
            try:
                arr = np.asarray(vector, dtype=np.float32)
            except (TypeError, ValueError) as error:
                raise StoreInputError(f"vector is not numeric: {error}", index=i, stream=stream) from error
            if arr.ndim != 1:
                raise DimensionMismatchError(
                    f"expected a 1-D vector, got shape {arr.shape}", index=i, stream=stream
                )
            dim = arr.shape[0] if dim is None else dim
            if arr.shape[0] != dim:
                raise DimensionMismatchError(
                    f"vector has {arr.shape[0]} dims, expected {dim}", index=i, stream=stream
                )
            if not np.all(np.isfinite(arr)):
                raise StoreInputError("vector has NaN or infinite values", index=i, stream=stream)
            if not np.any(arr):
                raise StoreInputError("vector is all zeros; cosine is undefined", index=i, stream=stream)
            _check_norm(arr, index=i, stream=stream)
            checked[stream] = arr
        arrays.append(checked)
    assert dim is not None
    return arrays, dim


def _engine_point(caller_id: str, streams: Mapping[str, np.ndarray], payload: dict[str, Any]) -> EnginePoint:
    """Stream vectors plus, for a point with audio and video, their unit vectors laid end to end."""
    vectors = dict(streams)
    if all(s in streams for s in FUSED_STREAMS):
        vectors[FUSED] = np.concatenate([unit(streams[s]) for s in FUSED_STREAMS]).astype(np.float32)
    return EnginePoint(id=point_id(caller_id), vectors=vectors, payload=payload)


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
        PayloadKey.STREAM_SET: stream_set(vectors),
        PayloadKey.START_S: given.get(PayloadKey.START_S),
        PayloadKey.END_S: given.get(PayloadKey.END_S),
        PayloadKey.SEGMENT_INDEX: given.get(PayloadKey.SEGMENT_INDEX),
        PayloadKey.METADATA: dict(metadata or {}),
    }


def _copy_batch(target: OmniStore, batch: Sequence[StoredPoint]) -> int:
    target.upsert(
        [p.id for p in batch],
        [p.vectors for p in batch],
        [{k: v for k, v in p.payload.items() if k in CALLER_PAYLOAD_KEYS} for p in batch],
    )
    return len(batch)


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload as callers see it: without the store's own ``stream_set`` key."""
    return {k: v for k, v in payload.items() if k != PayloadKey.STREAM_SET}


def _streams_of(record: EngineRecord) -> dict[str, np.ndarray]:
    return {s: v for s, v in record.vectors.items() if s in STREAMS}


def _hit(record: EngineRecord, score: float, scores: np.ndarray, streams: Sequence[Stream]) -> Hit:
    return Hit(
        id=str(record.payload.get(PayloadKey.ID, record.id)),
        score=score,
        payload=_public(record.payload),
        stream_scores={s: float(scores[j]) for j, s in enumerate(streams) if not np.isnan(scores[j])},
    )
