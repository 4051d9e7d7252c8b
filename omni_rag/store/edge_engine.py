"""Embedded engine: Qdrant Edge (``qdrant-edge-py``), one ``EdgeShard`` per collection.

Qdrant Edge runs the server's own segment, HNSW and write-ahead-log code in-process, so an
embedded store searches with an index instead of numpy over Python dicts (qdrant-client's local
mode). Layout under the store folder::

    edge/<collection>/shard/        the EdgeShard (segments + WAL)
    edge/<collection>/omni_rag.json collection metadata (model id, revision, dim), replaced atomically
    edge/<collection>.lock          held while a process has the collection open

The index maintains itself: Edge runs the server's segment optimizers only when asked, so the
engine asks (:meth:`EdgeEngine.keep_indexed`) once ``index_threshold`` points were written since
the last build. A build indexes the segment holding the new points, merged at most with other
small segments (none grows past :data:`SEGMENT_POINTS`), so its cost follows what was added, not
the collection's size. Until then new points are searched exactly: correct, slower. A
``building`` marker next to the shard lives while a build runs; a process killed mid-build leaves
it, and the next open builds again.

Qdrant marks Edge as beta. A shard can be opened by one process at a time (its WAL is locked); the
lock file makes that hold even before the collection exists, and the holder serves other
processes' reads (:mod:`omni_rag.store.sharing`), so only a second writer gets
:class:`~omni_rag.store.errors.StoreLockedError`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import qdrant_edge as qe
from qdrant_client import models
from tqdm import tqdm

from omni_rag.store.engine import (
    EnginePoint,
    EngineRecord,
    FusedQuery,
    IndexInfo,
    Nearest,
    VectorSpec,
    collection_vectors,
)
from omni_rag.store.errors import StoreError, StoreInputError, StoreLockedError, StoreWriteError
from omni_rag.store.models import PayloadKey
from omni_rag.store.sharing import ReadServer, serve_reads

#: HNSW graph degree and build effort. At 2048 d on random vectors (the hardest case: near ties)
#: m=16 / ef_construct=64 gave top-10 overlap ~0.5 with exact fusion at 5k points; m=32 / 200 gives
#: 0.95-0.98 for about 1.7x the build time.
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
#: Below this many KB of vectors a segment is scanned exactly instead of searched through HNSW.
FULL_SCAN_THRESHOLD_KB = 10_000
#: Points written before the store has Edge index them (``OmniStore(index_threshold=...)``).
#: Unindexed points are scanned exactly, about 1 ms per 1,000 points and query at 2048 d.
INDEX_THRESHOLD = 2_000

#: Points in a segment past which Edge merges nothing more into it: a build after 1,000 new points
#: indexes them (merged with other small segments), never the collection's large segments again.
#: Merges stop once the next would pass it, so a store kept this way holds about 2 x points / cap
#: segments, each searched on its own. At 100k points a 20k cap kept 7 segments and searched 2.0x
#: slower than one optimize(); 50k keeps 4 and searched 1.11-1.30x, with a 1,000-point add indexed
#: in 5-6 s (1.3-1.6 % of a full build; benchmarks/bench_store.py). At 2048 d a 50k merge needs about
#: 4 GiB of free disk while it runs (Edge checks, and refuses the build when short).
SEGMENT_POINTS = 50_000

logger = logging.getLogger(__name__)

_INDEXES: tuple[tuple[str, qe.PayloadSchemaType], ...] = (
    (PayloadKey.ID, qe.PayloadSchemaType.Keyword),
    (PayloadKey.SOURCE, qe.PayloadSchemaType.Keyword),
    (PayloadKey.MODALITIES, qe.PayloadSchemaType.Keyword),
    (PayloadKey.STREAM_SET, qe.PayloadSchemaType.Keyword),
    (PayloadKey.SEGMENT_INDEX, qe.PayloadSchemaType.Integer),
    (PayloadKey.START_S, qe.PayloadSchemaType.Float),
    (PayloadKey.END_S, qe.PayloadSchemaType.Float),
)
_METADATA_FILE = "omni_rag.json"


class EdgeEngine:
    """One collection in a Qdrant Edge shard; ``root=None`` keeps it in a temporary folder."""

    def __init__(
        self, collection: str, root: str | os.PathLike[str] | None, index_threshold: int = INDEX_THRESHOLD
    ) -> None:
        self.collection = collection
        self.index_threshold = index_threshold
        self._written = 0  # points written since the last build
        self._tmp = tempfile.TemporaryDirectory(prefix="omni-rag-") if root is None else None
        self.root = Path(self._tmp.name if self._tmp is not None else root)  # type: ignore[arg-type]
        self.folder = self.root / "edge" / collection
        self._lock: IO[str] | None = None
        self._shard: qe.EdgeShard | None = None
        self._stream_sets: dict[str, int] | None = None
        # the read server's threads and this process's writes take turns on the shard
        self.turn = threading.RLock()
        self._server: ReadServer | None = None
        if self._tmp is None:
            self._lock = _acquire(self.root / "edge" / f"{collection}.lock", self.root)
            self._server = serve_reads(self, self.root, self.turn)

    # ------------------------------------------------------------------ collection

    @property
    def _shard_dir(self) -> Path:
        return self.folder / "shard"

    @property
    def _marker(self) -> Path:
        return self.folder / "building"

    def _open(self) -> qe.EdgeShard | None:
        with self.turn:
            return self._load()

    def _load(self) -> qe.EdgeShard | None:
        if self._shard is None and (self._shard_dir / "wal").exists():
            specs = list(self.vectors().values())
            # the current optimizer settings apply to shards made before them too
            config = shard_config(specs) if specs else None
            try:
                self._shard = qe.EdgeShard.load(str(self._shard_dir), config)
            except Exception as error:
                raise _engine_error(error, self.root) from error
            if self._marker.exists():  # a build a crash cut short restarts here
                self._build(self._shard, show_progress=False)
        return self._shard

    def exists(self) -> bool:
        return self._open() is not None

    def vectors(self) -> dict[str, VectorSpec]:
        # recorded at creation: the binding exposes no config getter for a loaded shard
        params = _read_json(self.folder / _METADATA_FILE).get("vectors") or {}
        return {name: VectorSpec(name, int(p["size"]), p["distance"]) for name, p in params.items()}

    def create(self, dim: int, metadata: Mapping[str, Any] | None) -> None:
        specs = collection_vectors(dim)
        config = shard_config(specs)
        if self._shard_dir.exists():  # a create that died before its first WAL write
            shutil.rmtree(self._shard_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(
            self.folder / _METADATA_FILE,
            {
                "vectors": {s.name: {"size": s.size, "distance": s.distance} for s in specs},
                "metadata": dict(metadata or {}),
            },
        )
        try:
            shard = qe.EdgeShard.create(str(self._shard_dir), config)
            for key, schema in _INDEXES:
                shard.update(qe.UpdateOperation.create_field_index(key, schema))
            shard.flush()
        except Exception as error:
            raise _engine_error(error, self.root) from error
        self._shard = shard

    def get_metadata(self) -> dict[str, Any]:
        return dict(_read_json(self.folder / _METADATA_FILE).get("metadata") or {})

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        state = _read_json(self.folder / _METADATA_FILE)
        state["metadata"] = dict(metadata)
        try:
            _write_json(self.folder / _METADATA_FILE, state)
        except OSError as error:
            raise StoreWriteError(f"cannot record the collection's info in {self.folder}: {error}") from error

    # ------------------------------------------------------------------ points

    def upsert(self, points: Sequence[EnginePoint]) -> None:
        # the binding reads a numpy array element by element; a list of floats is about 3x faster
        edge_points = [
            qe.Point(p.id, {name: vector.tolist() for name, vector in p.vectors.items()}, p.payload)
            for p in points
        ]
        self._update(qe.UpdateOperation.upsert_points(edge_points))
        self._written += len(points)

    def delete(self, ids: Sequence[str]) -> None:
        self._update(qe.UpdateOperation.delete_points(list(ids)))

    def retrieve(self, ids: Sequence[str], with_vectors: Sequence[str] | bool) -> list[EngineRecord]:
        vectors = list(with_vectors) if not isinstance(with_vectors, bool) else with_vectors
        records = self._require().retrieve(list(ids), with_payload=True, with_vector=vectors)
        return [_record(r) for r in records]

    def count(self, filter: models.Filter | None = None) -> int:
        return int(self._require().count(qe.CountRequest(exact=True, filter=to_edge_filter(filter))))

    def stream_sets(self) -> Mapping[str, int]:
        # cached until this process writes: the folder lock keeps every other writer out
        if self._stream_sets is None:
            response = self._require().facet(qe.FacetRequest(PayloadKey.STREAM_SET, limit=16, exact=True))
            self._stream_sets = {str(hit.value): int(hit.count) for hit in response.hits if hit.count > 0}
        return self._stream_sets

    def nearest(self, requests: Sequence[Nearest]) -> list[list[EngineRecord]]:
        # requests often share a filter object (a query's candidates, rescored stream by stream)
        filters: dict[int, qe.Filter | None] = {}
        batch = qe.QueryBatchRequest(queries=[_query_request(r, filters) for r in requests])
        return [[_record(p) for p in points] for points in self._require().query_batch(batch)]

    def fused(self, query: FusedQuery) -> list[EngineRecord]:
        fusion: Any = (
            qe.Fusion.Dbsf()
            if query.fusion == "dbsf"
            else qe.Fusion.Rrf(k=2, weights=list(query.weights) if query.weights else None)
        )
        request = qe.QueryRequest(
            limit=query.limit,
            prefetches=[_prefetch(p) for p in query.prefetch],
            query=fusion,
            filter=to_edge_filter(query.filter),
            with_payload=True,
            with_vector=False,
        )
        return [_record(p) for p in self._require().query(request)]

    def scroll(
        self, offset: str | None, limit: int, filter: models.Filter | None = None, with_vectors: bool = True
    ) -> tuple[list[EngineRecord], str | None]:
        request = qe.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=to_edge_filter(filter),
            with_payload=True,
            with_vector=with_vectors,
        )
        records, next_offset = self._require().scroll(request)
        return [_record(r) for r in records], None if next_offset is None else str(next_offset)

    def collections(self) -> list[str]:
        edge = self.root / "edge"
        return sorted(p.name for p in edge.iterdir() if (p / "shard").is_dir()) if edge.is_dir() else []

    def optimize(self, show_progress: bool = False) -> None:
        shard = self._open()
        if shard is not None:
            self._build(shard, show_progress)

    def keep_indexed(self, show_progress: bool = False) -> None:
        if 0 < self.index_threshold <= self._written:
            try:
                self.optimize(show_progress)
            except StoreWriteError as error:  # the points are written; only their index waits
                self._written = 0  # try again after as many more, or at the next open (marker)
                logger.warning("%s; unindexed points are searched exactly until a build succeeds", error)

    def index_info(self) -> IndexInfo:
        info = self._require().info()
        return IndexInfo(
            points=int(info.points_count),
            indexed_vectors=int(info.indexed_vectors_count),
            segments=int(info.segments_count),
        )

    def drop(self) -> None:
        self._stream_sets = None
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> None:
        with self.turn:  # no served read runs on a shard being closed
            self._close()

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------ helpers

    def _require(self) -> qe.EdgeShard:
        shard = self._open()
        if shard is None:
            raise StoreError(f"collection {self.collection!r} does not exist yet")
        return shard

    def _build(self, shard: qe.EdgeShard, show_progress: bool) -> None:
        """Run Edge's optimizers until none is planned; one step of a bar (Edge reports no progress)."""
        with self.turn:
            self._build_now(shard, show_progress)

    def _build_now(self, shard: qe.EdgeShard, show_progress: bool) -> None:
        pending = self._written
        start = time.perf_counter()
        self._marker.touch()
        with tqdm(
            total=1,
            desc="search index",
            unit="build",
            file=sys.stderr,
            disable=not show_progress,
            leave=False,
        ) as bar:
            try:
                changed = shard.optimize()
                # the segments a build replaced stay on disk until a flush retires them: without
                # it a store kept by builds held 4x its size (2.6 GB for 10k points, 0.63 GB
                # after), and Edge refused later builds for want of disk
                shard.flush()
            except Exception as error:
                raise StoreWriteError(f"building the index of {self.collection!r} failed: {error}") from error
            bar.update(1)
        self._marker.unlink(missing_ok=True)
        self._written = 0
        if changed:
            logger.info(
                "indexed %s (%d points written since the last build) in %.1f s",
                self.collection,
                pending,
                time.perf_counter() - start,
            )

    def _update(self, operation: qe.UpdateOperation) -> None:
        self._stream_sets = None
        shard = self._open()
        if shard is None:
            raise StoreWriteError(f"write to collection {self.collection!r} failed: it no longer exists")
        if not (self._shard_dir / "wal").is_dir():  # removed under us: a write would go to deleted files
            raise StoreWriteError(
                f"write to collection {self.collection!r} failed: its folder {self._shard_dir} was removed"
            )
        try:
            with self.turn:
                shard.update(operation)
        except Exception as error:
            raise StoreWriteError(f"write to collection {self.collection!r} failed: {error}") from error


def shard_config(specs: Sequence[VectorSpec]) -> qe.EdgeConfig:
    """The Edge configuration of a collection with these named vectors (also used by the benchmarks).

    Edge sizes a segment by its largest vector storage (the fused vector, 4 bytes a dimension).
    """
    largest_kb = max(s.size for s in specs) * 4 / 1024
    return qe.EdgeConfig(
        vectors={
            s.name: qe.EdgeVectorParams(
                size=s.size, distance=qe.Distance.Cosine if s.distance == "cosine" else qe.Distance.Dot
            )
            for s in specs
        },
        hnsw_config=qe.HnswIndexConfig(
            m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=FULL_SCAN_THRESHOLD_KB
        ),
        quantization_config=qe.ScalarQuantizationConfig(
            type=qe.ScalarType.Int8, quantile=0.99, always_ram=True
        ),
        # page-cached like the vectors: Edge's default (Cold) read each hit's payload from disk,
        # 0.05 ms a point in every search; the page cache can still drop it under pressure
        payload_memory=qe.Memory.Cached,
        optimizers=qe.EdgeOptimizersConfig(
            # any unindexed segment is indexed when a build runs: the store decides when
            indexing_threshold=1,
            max_segment_size=max(1, int(SEGMENT_POINTS * largest_kb)),
            # written points stay visible at once; a search scans them until they are indexed
            prevent_unoptimized=False,
        ),
    )


def _acquire(path: Path, root: Path) -> IO[str]:
    """Hold an exclusive lock for this process's lifetime with the store (released by the OS on kill)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreLockedError(
            f"the store at {root} is in use by another process (collection {path.stem!r}). Qdrant Edge "
            "opens a collection in one process at a time, so searches cannot run while an index is "
            "written. Wait for it to finish, use another store folder, or run a Qdrant server (--url)."
        ) from None
    return handle


def _engine_error(error: Exception, root: Path) -> StoreError:
    if "WouldBlock" in str(error):
        return StoreLockedError(f"the store at {root} is in use by another process ({error})")
    return StoreError(f"Qdrant Edge failed on the store at {root}: {error}")


def _query_request(request: Nearest, filters: dict[int, qe.Filter | None]) -> qe.QueryRequest:
    """The request for Edge; ``filters`` holds the call's translated filters by object identity."""
    key = id(request.filter)
    if key not in filters:
        filters[key] = to_edge_filter(request.filter)
    return qe.QueryRequest(
        limit=request.limit,
        query=qe.Query.Nearest(request.vector.tolist(), using=request.using),
        filter=filters[key],
        params=_search_params(request),
        with_payload=request.with_payload,
        with_vector=False,
    )


def _search_params(request: Nearest) -> qe.SearchParams:
    # exact means exact: a full scan on the float32 originals, not on the int8 copies
    ignore = qe.QuantizationSearchParams(ignore=True) if request.exact else None
    return qe.SearchParams(hnsw_ef=request.hnsw_ef, exact=request.exact, quantization=ignore)


def _prefetch(request: Nearest) -> qe.Prefetch:
    return qe.Prefetch(
        limit=request.limit,
        query=qe.Query.Nearest(request.vector.tolist(), using=request.using),
        filter=to_edge_filter(request.filter),
        params=_search_params(request),
    )


def _record(point: Any) -> EngineRecord:
    # each attribute read converts from Rust again: read each once (searches build thousands)
    vector, payload, score = point.vector, point.payload, getattr(point, "score", None)
    return EngineRecord(
        id=str(point.id),
        payload=dict(payload) if payload else {},
        vectors={k: np.asarray(v, dtype=np.float32) for k, v in vector.items()} if vector else {},
        score=float(score) if score is not None else None,
    )


def to_edge_filter(filter: models.Filter | None) -> qe.Filter | None:
    """Translate a qdrant-client ``Filter`` (what :func:`~omni_rag.store.to_filter` builds) for Edge.

    Raises:
        StoreInputError: A condition Edge's translation does not cover, named.
    """
    if filter is None:
        return None

    def many(conditions: Any) -> list[Any] | None:
        if conditions is None:
            return None
        items = conditions if isinstance(conditions, list) else [conditions]
        return [_condition(c) for c in items]

    return qe.Filter(must=many(filter.must), should=many(filter.should), must_not=many(filter.must_not))


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _canonical_id(point_id: Any) -> str:
    """A point id as Edge stores it; ids the engine returned are already in that form (the fast path)."""
    text = str(point_id)
    return text if _CANONICAL_UUID.fullmatch(text) else str(uuid.UUID(text))


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return to_edge_filter(condition)
    if isinstance(condition, models.IsNullCondition):
        return qe.IsNullCondition(key=condition.is_null.key)
    if isinstance(condition, models.IsEmptyCondition):
        return qe.IsEmptyCondition(key=condition.is_empty.key)
    if isinstance(condition, models.HasIdCondition):
        return qe.HasIdCondition(point_ids={_canonical_id(i) for i in condition.has_id})
    if isinstance(condition, models.FieldCondition):
        match, rng = condition.match, condition.range
        if isinstance(match, models.MatchValue):
            return qe.FieldCondition(key=condition.key, match=qe.MatchValue(match.value))
        if isinstance(match, models.MatchAny):
            return qe.FieldCondition(key=condition.key, match=qe.MatchAny(list(match.any)))  # type: ignore[arg-type]
        if isinstance(match, models.MatchExcept):
            return qe.FieldCondition(key=condition.key, match=qe.MatchExcept(list(match.except_)))  # type: ignore[arg-type]
        if match is None and isinstance(rng, models.Range):
            bounds = qe.RangeFloat(gte=rng.gte, gt=rng.gt, lte=rng.lte, lt=rng.lt)
            return qe.FieldCondition(key=condition.key, range=bounds)
    raise StoreInputError(f"filter condition not supported by the embedded engine: {condition!r}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
