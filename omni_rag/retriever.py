"""``OmniRetriever``: embed items into an :class:`OmniStore`, search it with any modality.

This is the one place that joins the embedder and the store; the LlamaIndex and
LangChain retrievers and the CLI are thin layers over it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omni_rag.content import Content, ItemLike, as_content
from omni_rag.errors import ItemFailure, OmniError, OmniInputError
from omni_rag.segments import DEFAULT_POLICY, SegmentPolicy, plan_item
from omni_rag.store import FusionMode, Hit, HitGroup, OmniStore

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder

#: Items embedded and written per round trip in :meth:`OmniRetriever.add`.
ADD_CHUNK = 32


class ModelMismatchError(OmniError):
    """The collection was indexed with another model; its vectors are not comparable."""


@dataclass
class AddResult:
    """What :meth:`OmniRetriever.add` did, item by item.

    Attributes:
        added: Point ids embedded and written (``<item id>#<k>`` for segments).
        unchanged: Point ids already in the store, skipped without embedding.
        failures: Items that could not be embedded (``errors="skip"``), with reasons.
        added_items: Input indices of items that had at least one point written.
        unchanged_items: Input indices of items whose points were all already stored.
        duplicates: Input index -> index of an earlier item in the same call with the same
            content (or id): one point per content, recorded at the first item's source; the copy
            is neither embedded nor written again.
    """

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    added_items: list[int] = field(default_factory=list)
    unchanged_items: list[int] = field(default_factory=list)
    duplicates: dict[int, int] = field(default_factory=dict)


def content_id(item: Content) -> str:
    """A stable id from what an item holds: file bytes for paths, raw bytes for arrays.

    Re-adding the same file under another name is a no-op; editing it gives a new id.
    """
    digest = hashlib.sha256()
    for name in ("text", "image", "audio", "video"):
        value = getattr(item, name)
        if value is None:
            continue
        digest.update(name.encode())
        if isinstance(value, str) and name == "text":
            digest.update(value.encode())
        elif isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            with open(value, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        elif isinstance(value, (str, os.PathLike)):
            digest.update(os.fspath(value).encode())  # a URL: identified by its address
        elif hasattr(value, "tobytes"):
            digest.update(np.asarray(value).tobytes())
        elif hasattr(value, "numpy"):
            digest.update(value.detach().cpu().numpy().tobytes())
        else:
            digest.update(value.tobytes() if hasattr(value, "tobytes") else repr(value).encode())
    digest.update(f"{item.start_s}:{item.end_s}".encode())
    return digest.hexdigest()[:32]


def source_of(item: Content) -> str | None:
    """The file or URL a point came from: its video, else audio, else image, when given as a path."""
    for name in ("video", "audio", "image"):
        value = getattr(item, name)
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    return None


class OmniRetriever:
    """Indexes items as per-stream vectors and answers queries of any modality with late fusion.

    Args:
        embedder: The model.
        store: Where vectors live.
        k: Results per search.
        fusion: ``mean`` (default), ``rrf``, ``dbsf`` or ``max``.
        streams: Streams searched by default (``None`` = all).
        weights: Per-stream weights for ``mean``.
    """

    def __init__(
        self,
        embedder: OmniEmbedder,
        store: OmniStore,
        *,
        k: int = 10,
        fusion: FusionMode = "mean",
        streams: Sequence[str] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.k = _check_k(k)
        self.fusion: FusionMode = fusion
        self.streams = list(streams) if streams is not None else None
        self.weights = dict(weights) if weights is not None else None

    # -- model bookkeeping ------------------------------------------------------------------------

    def model_info(self) -> dict[str, Any]:
        """What the collection records about the model that filled it."""
        return {
            "model_id": self.embedder.model_id,
            "revision": self.embedder.revision,
            "dim": self.embedder.dim,
        }

    def check_model(self) -> None:
        """Refuse to mix vectors of different models in one collection.

        Raises:
            ModelMismatchError: naming both models.
        """
        info = self.store.get_info()
        recorded = info.get("model_id")
        if recorded is None:
            return
        mine = self.model_info()
        same_name = Path(str(recorded)).name == Path(str(mine["model_id"])).name
        if not same_name or info.get("dim") != mine["dim"] or info.get("revision") != mine["revision"]:
            raise ModelMismatchError(
                f"collection {self.store.collection!r} was indexed with {recorded} "
                f"(revision {info.get('revision')}, dim {info.get('dim')}); this embedder is "
                f"{mine['model_id']} (revision {mine['revision']}, dim {mine['dim']}). "
                "Use the same model, or index into another collection."
            )

    # -- indexing ---------------------------------------------------------------------------------

    def add(
        self,
        items: Sequence[ItemLike],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        errors: str = "raise",
        overwrite: bool = False,
        segment: SegmentPolicy | bool | None = True,
    ) -> AddResult:
        """Embed items as streams and upsert them; long audio/video become timestamped segments.

        Items are embedded in chunks of at most :data:`ADD_CHUNK` items and about one segment
        window of audio/video, so memory is bounded by a window, not by a recording's length.

        Args:
            items: Strings, :class:`Content` or dicts of its fields.
            ids: Caller ids; default a content hash, so re-adding the same file is a no-op.
            metadata: Per-item user metadata (merged over ``Content.metadata``).
            errors: ``"raise"`` or ``"skip"`` (bad items are reported in the result).
            overwrite: Re-embed ids already in the store instead of skipping them.
            segment: ``True`` cuts audio/video longer than a window with
                :data:`~omni_rag.segments.DEFAULT_POLICY`, a :class:`~omni_rag.segments.SegmentPolicy`
                cuts with it, ``False``/``None`` never cuts (media over the context then fails).
                Each segment is a point with ``source``, ``start_s``, ``end_s``, ``segment_index``
                and the id ``<item id>#<segment_index>``; short items stay one point with the
                item's id. A re-add whose plan changed (another policy) re-embeds the segments
                whose time range changed and deletes the item's segments beyond the new plan.
        """
        _check_items(items)
        if ids is not None:
            _check_ids(ids, len(items))
        if metadata is not None and len(metadata) != len(items):
            raise ValueError(f"{len(metadata)} metadata entries for {len(items)} items")
        if isinstance(segment, SegmentPolicy):
            policy: SegmentPolicy | None = segment
        elif segment is True:
            policy = DEFAULT_POLICY
        elif segment is False or segment is None:
            policy = None
        else:
            raise TypeError(f"segment must be a SegmentPolicy, True, False or None, got {segment!r}")
        self.check_model()
        result = AddResult()
        # (item index, content to embed, point id, seconds of media or None, (item id, segments) or None)
        rows: list[tuple[int, Content, str, float | None, tuple[str, int] | None]] = []
        planned: set[int] = set()
        first_of: dict[str, int] = {}
        for index, item in enumerate(items):
            try:
                content = as_content(item, index)
                item_id = ids[index] if ids is not None else content_id(content)
                if item_id in first_of:  # the same file at two paths: one point, at the first path
                    result.duplicates[index] = first_of[item_id]
                    continue
                plan = plan_item(content, policy=policy, index=index)
            except OmniInputError as error:
                if errors != "skip":
                    raise
                result.failures.append(ItemFailure.from_error(error))
                continue
            first_of[item_id] = index
            planned.add(index)
            if not plan.segmented:
                rows.append((index, content, item_id, plan.duration_s, None))
                continue
            for k, part in enumerate(plan.segments):
                assert part.start_s is not None and part.end_s is not None
                seconds = part.end_s - part.start_s
                rows.append((index, part, f"{item_id}#{k}", seconds, (item_id, len(plan.segments))))
        if not overwrite and rows:
            existing = self.store.get([row[2] for row in rows])
            pending = []
            for row, point in zip(rows, existing, strict=True):
                content, segmented = row[1], row[4] is not None
                same_range = point is not None and (
                    not segmented
                    or (
                        point.payload.get("start_s") == content.start_s
                        and point.payload.get("end_s") == content.end_s
                    )
                )
                if same_range:
                    result.unchanged.append(row[2])
                else:
                    pending.append(row)
            rows = pending
        if rows and not self.store.get_info().get("model_id"):
            self.store.set_info(self.model_info())
        # Chunks: at most ADD_CHUNK items and one window of timed media (a longer item goes alone).
        budget = (policy or DEFAULT_POLICY).window_s
        chunks: list[list[tuple[int, Content, str, float | None, tuple[str, int] | None]]] = []
        seconds_in_chunk = 0.0
        for row in rows:
            weight = 0.0  # text and images: bounded by ADD_CHUNK alone
            if row[1].audio is not None or row[1].video is not None:
                # unknown length: alone when segmenting (it may be long); as before when not
                weight = row[3] if row[3] is not None else (budget if policy is not None else 0.0)
            if not chunks or len(chunks[-1]) >= ADD_CHUNK or seconds_in_chunk + weight > budget:
                chunks.append([])
                seconds_in_chunk = 0.0
            chunks[-1].append(row)
            seconds_in_chunk += weight
        for chunk in chunks:
            embedded = self.embedder.embed_document_streams([row[1] for row in chunk], errors="skip")
            for failure in embedded.failures:
                original = chunk[failure.index][0]
                located = ItemFailure(index=original, field=failure.field, reason=failure.reason)
                if errors != "skip":
                    raise OmniInputError(located.reason, index=located.index, field=located.field)
                result.failures.append(located)
            write_ids, vectors, payloads = [], [], []
            for (index, content, point_id, _, _), streams in zip(chunk, embedded.embeddings, strict=True):
                if streams is None:
                    continue
                extra = dict(content.metadata)
                if metadata is not None and metadata[index]:
                    extra.update(metadata[index] or {})
                write_ids.append(point_id)
                vectors.append(streams)
                payloads.append(self._payload(content, extra))
            self.store.upsert(write_ids, vectors, payloads)
            result.added.extend(write_ids)
        # Segments past the end of a new plan (an item re-added with another policy) are stale.
        for item_id, count in dict.fromkeys(row[4] for row in rows if row[4] is not None):
            k = count
            while stale := [p.id for p in self.store.get([f"{item_id}#{j}" for j in range(k, k + 64)]) if p]:
                self.store.delete(stale)
                k += 64
        result.failures.sort(key=lambda f: f.index)
        failed = {f.index for f in result.failures}
        written = set(result.added)
        result.added_items = sorted({row[0] for row in rows if row[2] in written} - failed)
        result.unchanged_items = sorted(planned - failed - {row[0] for row in rows})
        return result

    @staticmethod
    def _payload(content: Content, metadata: dict[str, Any]) -> dict[str, Any]:
        if content.text is not None:
            metadata.setdefault("text", content.text)
        return {
            "source": source_of(content),
            "start_s": content.start_s,
            "end_s": content.end_s,
            "segment_index": metadata.pop("segment_index", None),
            "metadata": metadata,
        }

    # -- searching --------------------------------------------------------------------------------

    def embed_query(self, query: ItemLike) -> np.ndarray:
        """The query vector: text, image, audio, video or any mix, with the query prompt."""
        return self.embedder.embed_queries([query])[0]

    def search(
        self,
        query: ItemLike,
        *,
        k: int | None = None,
        streams: Sequence[str] | None = None,
        fusion: FusionMode | None = None,
        weights: Mapping[str, float] | None = None,
        filter: Any = None,
    ) -> list[Hit]:
        """Best matches for ``query`` (a ``str`` or any :class:`Content`), fused across streams."""
        limit = _check_k(self.k if k is None else k)
        self.check_model()
        return self.store.search(
            self.embed_query(query),
            streams=streams if streams is not None else self.streams,
            fusion=fusion or self.fusion,
            weights=weights if weights is not None else self.weights,
            limit=limit,
            filter=filter,
        )

    def search_grouped(
        self,
        query: ItemLike,
        *,
        k: int | None = None,
        group_size: int = 3,
        streams: Sequence[str] | None = None,
        fusion: FusionMode | None = None,
        weights: Mapping[str, float] | None = None,
        filter: Any = None,
    ) -> list[HitGroup]:
        """Each source once, with its best segments: "which video, and where in it"."""
        limit = _check_k(self.k if k is None else k)
        self.check_model()
        return self.store.search_groups(
            self.embed_query(query),
            group_by="source",
            group_size=group_size,
            streams=streams if streams is not None else self.streams,
            fusion=fusion or self.fusion,
            weights=weights if weights is not None else self.weights,
            limit=limit,
            filter=filter,
        )


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return k


def _check_items(items: object) -> None:
    """Refuse one item passed where a list is expected (a string would index each character)."""
    if isinstance(items, (str, bytes, Content, Mapping)) or not isinstance(items, Sequence):
        raise OmniInputError(
            f"items must be a list of items, got one {type(items).__name__}: wrap it, e.g. add([item])",
            field="items",
        )


def _check_ids(ids: Sequence[str], n: int) -> None:
    """Caller ids: one per item, unique in the call, and free of '#' (it marks segment ids)."""
    if isinstance(ids, str) or len(ids) != n:
        raise ValueError(f"ids must be a list of {n} strings, one per item, got {ids!r:.80}")
    first: dict[str, int] = {}
    for index, item_id in enumerate(ids):
        if not isinstance(item_id, str) or not item_id:
            raise OmniInputError(f"id must be a non-empty str, got {item_id!r}", index=index, field="id")
        if "#" in item_id:
            raise OmniInputError(
                f"id {item_id!r} contains '#', which marks segment ids (<item id>#<k>)",
                index=index,
                field="id",
            )
        if item_id in first:
            raise OmniInputError(
                f"id {item_id!r} repeats item {first[item_id]}'s id", index=index, field="id"
            )
        first[item_id] = index
