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

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
from qdrant_client import QdrantClient

from omni_rag.store.client_engine import ClientEngine
from omni_rag.store.edge_engine import INDEX_THRESHOLD, EdgeEngine
from omni_rag.store.engine import (
    Engine,
    IndexInfo,
    collection_vectors,
)
from omni_rag.store.errors import (
    CollectionMismatchError,
    StoreInputError,
    StoreLockedError,
)
from omni_rag.store.filters import (
    FilterLike,
    check_collection_name,
    point_id,
    to_filter,
)
from omni_rag.store.legacy import check_not_legacy
from omni_rag.store.models import (
    CALLER_PAYLOAD_KEYS,
    STREAMS,
    PayloadKey,
    StoredPoint,
)
from omni_rag.store.payloads import build_payload, engine_point, public_payload, streams_of
from omni_rag.store.search import StoreSearch
from omni_rag.store.sharing import ServedEngine, served_or_raise
from omni_rag.store.validation import check_hnsw_ef, check_id_list, check_oversampling, check_vectors

logger = logging.getLogger(__name__)


class OmniStore(StoreSearch):
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
        check_oversampling(oversampling)
        check_hnsw_ef(hnsw_ef)
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

    @property
    def writable(self) -> bool:
        """``False`` while another process holds this embedded store: it can be searched, not written."""
        return not isinstance(self._engine, ServedEngine) or self._engine.taken_over

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
        check_id_list(ids)
        if len(ids) != len(vectors) or (payloads is not None and len(payloads) != len(ids)):
            raise StoreInputError(
                f"length mismatch: {len(ids)} ids, {len(vectors)} vectors"
                + (f", {len(payloads)} payloads" if payloads is not None else "")
            )
        if not ids:
            return
        self._refresh()
        arrays, dim = check_vectors(vectors, self._dim)
        points = [
            engine_point(
                item_id, arrays[i], build_payload(i, item_id, arrays[i], payloads[i] if payloads else None)
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
                else StoredPoint(
                    id=caller_id, payload=public_payload(record.payload), vectors=streams_of(record)
                )
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
                yield StoredPoint(
                    id=caller_id, payload=public_payload(record.payload), vectors=streams_of(record)
                )
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


def store_or_open(
    collection: str,
    *,
    store: OmniStore | None = None,
    path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    api_key: str | None = None,
    client: QdrantClient | None = None,
) -> OmniStore:
    """The caller's ``store``, else one opened from the connection arguments.

    The framework vector stores take either, as langchain-qdrant and LlamaIndex's Qdrant store do.
    """
    if store is not None:
        return store
    return OmniStore(
        collection, path=os.fspath(path) if path else None, url=url, api_key=api_key, client=client
    )


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


def _copy_batch(target: OmniStore, batch: Sequence[StoredPoint]) -> int:
    target.upsert(
        [p.id for p in batch],
        [p.vectors for p in batch],
        [{k: v for k, v in p.payload.items() if k in CALLER_PAYLOAD_KEYS} for p in batch],
    )
    return len(batch)
