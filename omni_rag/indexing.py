"""The steps of :meth:`OmniRetriever.add <omni_rag.retriever.OmniRetriever.add>`, each usable alone.

content -> :func:`plan_items` (ids, segments; no model, no store) -> :func:`drop_unchanged` (store
lookup) -> :func:`chunk_points` (bounded media per forward pass) -> :func:`embed_chunk` (model only)
-> :func:`write_chunk` (store only) -> :func:`delete_stale` (old segments or points of re-planned
items). Planning needs neither the model nor the store, embedding never touches the store, so a
pipeline can plan on one machine, embed on others and write in one place and still produce the
points, ids and payloads a single-process run does. :func:`begin_add` and :class:`AddRun` hold
everything but the embedding, so ``OmniRetriever.add`` (embeds in-process) and
:mod:`omni_rag.distributed` (embeds on Ray actors) share one plan/write/summary path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import weakref
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omni_rag.content import Content, ItemLike, as_content
from omni_rag.errors import ItemFailure, MediaError, OmniInputError
from omni_rag.modalities import MEDIA_FIELDS, SOURCE_ORDER
from omni_rag.scan import FileItem, to_item
from omni_rag.segments import DEFAULT_POLICY, SegmentPolicy, plan_item
from omni_rag.store import OmniStore

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder

#: Items embedded and written per round trip.
ADD_CHUNK = 32
#: Segment ids probed per store round trip when deleting stale segments.
_PROBE = 64


@dataclass(frozen=True)
class SegmentOf:
    """The item a segment belongs to and how many segments its plan has."""

    item_id: str
    count: int


@dataclass(frozen=True)
class PlannedPoint:
    """One point to write: a whole item, or one segment of a long one.

    Attributes:
        item_index: Position of the item in the caller's list.
        content: What is embedded (downloaded URLs replaced by local copies).
        point_id: The caller-visible id (``<item id>#<k>`` for segments).
        seconds: Seconds of audio/video it holds, when known (bounds a chunk's memory).
        source: The file or URL recorded as the point's ``source``.
        segment_of: Set for segments of a long recording.
    """

    item_index: int
    content: Content
    point_id: str
    seconds: float | None
    source: str | None
    segment_of: SegmentOf | None = None


@dataclass
class Plan:
    """What :func:`plan_items` made of a list of items."""

    points: list[PlannedPoint] = field(default_factory=list)
    planned_items: set[int] = field(default_factory=set)
    failures: list[ItemFailure] = field(default_factory=list)
    duplicates: dict[int, int] = field(default_factory=dict)
    item_ids: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbeddedPoint:
    """A planned point with its stream vectors."""

    point: PlannedPoint
    vectors: dict[str, np.ndarray]


def content_id(item: Content) -> str:
    """A stable id from what an item holds: file bytes for paths, raw bytes for arrays.

    Re-adding the same file under another name is a no-op; editing it gives a new id.
    """
    digest = hashlib.sha256()
    for name in ("text", *MEDIA_FIELDS):
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
        elif hasattr(value, "numpy") and not hasattr(value, "tobytes"):
            digest.update(value.detach().cpu().numpy().tobytes())
        elif hasattr(value, "tobytes"):
            digest.update(np.asarray(value).tobytes())
        else:
            digest.update(repr(value).encode())
    digest.update(f"{item.start_s}:{item.end_s}".encode())
    return digest.hexdigest()[:32]


def source_of(item: Content) -> str | None:
    """The file or URL a point came from: its video, else audio, else image, when given as a path."""
    for name in SOURCE_ORDER:
        value = getattr(item, name)
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    return None


class LocalCopies:
    """Downloads each URL an add names once, for every segment and stream that reads it."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._paths: dict[str, str] = {}

    def localize(self, content: Content, index: int) -> Content:
        """``content`` with URL media replaced by local copies (deleted when the add ends)."""
        from omni_rag.media.fetch import is_url, local_file

        changes: dict[str, str] = {}
        for name in MEDIA_FIELDS:
            value = getattr(content, name)
            if isinstance(value, str) and is_url(value):
                if value not in self._paths:
                    try:
                        self._paths[value] = str(self._stack.enter_context(local_file(value)))
                    except MediaError as error:
                        raise OmniInputError(str(error), index=index, field=name) from error
                changes[name] = self._paths[value]
        return replace(content, **changes) if changes else content  # type: ignore[arg-type]


@dataclass
class MediaItems:
    """What :func:`media_items` made of paths and items: the ones to add, and the paths that failed.

    Attributes:
        items: Items to add, in order.
        positions: For each of ``items``, its index in the caller's list.
        failures: Paths that are missing or not media/text, with the caller's index.
    """

    items: list[ItemLike] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)

    def restore(self, result: AddResult) -> AddResult:
        """``result`` (of adding :attr:`items`) with the caller's indices, and the path failures."""
        at = self.positions
        return AddResult(
            added=result.added,
            unchanged=result.unchanged,
            failures=sorted(
                [replace(f, index=at[f.index]) for f in result.failures] + self.failures,
                key=lambda f: f.index,
            ),
            added_items=[at[i] for i in result.added_items],
            unchanged_items=[at[i] for i in result.unchanged_items],
            duplicates={at[i]: at[j] for i, j in result.duplicates.items()},
            crashed={at[i]: reason for i, reason in result.crashed.items()},
            item_ids={at[i]: item_id for i, item_id in result.item_ids.items()},
        )


def media_items(items: Sequence[ItemLike | os.PathLike[str]], *, errors: str = "raise") -> MediaItems:
    """Items from paths or items, a path becoming what ``omni-rag index`` makes of the file.

    A path (``os.PathLike``, or a ``str`` naming an existing file) is probed as the CLI does, so a
    video with a soundtrack is video + audio, with ``metadata={"path", "name"}``: the same id and
    points as ``omni-rag index``. Other items pass through (a ``str`` that is no file stays text).

    Raises:
        OmniInputError: A path that is missing or not media/text, naming its index and why (with
            ``errors="skip"`` it is listed in :attr:`MediaItems.failures` instead).
    """
    out = MediaItems()
    for index, item in enumerate(items):
        if isinstance(item, os.PathLike) or (isinstance(item, str) and Path(item).is_file()):
            path = Path(item)
            found = to_item(path.resolve()) if path.is_file() else None
            if not isinstance(found, FileItem):
                error = OmniInputError(
                    found.reason if found is not None else f"no such file {os.fspath(path)!r}",
                    index=index,
                    field="path",
                )
                if errors != "skip":
                    raise error
                out.failures.append(ItemFailure.from_error(error))
                continue
            item = found.content
        out.items.append(item)
        out.positions.append(index)
    return out


def resolve_policy(segment: SegmentPolicy | bool | None) -> SegmentPolicy | None:
    """``True`` -> the default policy, ``False``/``None`` -> never cut, a policy -> itself."""
    if isinstance(segment, SegmentPolicy):
        return segment
    if segment is True:
        return DEFAULT_POLICY
    if segment is False or segment is None:
        return None
    raise TypeError(f"segment must be a SegmentPolicy, True, False or None, got {segment!r}")


def plan_items(
    items: Sequence[ItemLike],
    ids: Sequence[str] | None,
    policy: SegmentPolicy | None,
    *,
    errors: str = "raise",
    copies: LocalCopies | None = None,
) -> Plan:
    """Ids, sources and segments of every item; needs neither the model nor the store.

    Items with the same content (or id) as an earlier one in the list are recorded in
    :attr:`Plan.duplicates` and planned once, at the first item's source.
    """
    plan = Plan()
    first_of: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            content = as_content(item, index)
            item_id = ids[index] if ids is not None else content_id(content)
            if item_id in first_of:
                plan.duplicates[index] = first_of[item_id]
                plan.item_ids[index] = item_id
                continue
            source = source_of(content)
            local = copies.localize(content, index) if copies is not None else content
            item_plan = plan_item(local, policy=policy, index=index)
        except OmniInputError as error:
            if errors != "skip":
                raise
            plan.failures.append(ItemFailure.from_error(error))
            continue
        first_of[item_id] = index
        plan.item_ids[index] = item_id
        plan.planned_items.add(index)
        if not item_plan.segmented:
            plan.points.append(PlannedPoint(index, local, item_id, item_plan.duration_s, source))
            continue
        parent = SegmentOf(item_id, len(item_plan.segments))
        for k, part in enumerate(item_plan.segments):
            assert part.start_s is not None and part.end_s is not None
            seconds = part.end_s - part.start_s
            plan.points.append(PlannedPoint(index, part, f"{item_id}#{k}", seconds, source, parent))
    return plan


def drop_unchanged(store: OmniStore, points: Sequence[PlannedPoint]) -> tuple[list[PlannedPoint], list[str]]:
    """Points still to embed, and the ids already stored with the same time range."""
    if not points:
        return [], []
    existing = store.get([p.point_id for p in points])
    pending, unchanged = [], []
    for point, stored in zip(points, existing, strict=True):
        same = stored is not None and (
            point.segment_of is None
            or (
                stored.payload.get("start_s") == point.content.start_s
                and stored.payload.get("end_s") == point.content.end_s
            )
        )
        (unchanged.append(point.point_id) if same else pending.append(point))
    return pending, unchanged


def chunk_points(points: Sequence[PlannedPoint], policy: SegmentPolicy | None) -> list[list[PlannedPoint]]:
    """Chunks of at most :data:`ADD_CHUNK` points and one window of timed media (a longer item alone)."""
    budget = (policy or DEFAULT_POLICY).window_s
    chunks: list[list[PlannedPoint]] = []
    seconds_in_chunk = 0.0
    for point in points:
        weight = 0.0  # text and images: bounded by ADD_CHUNK alone
        if point.content.audio is not None or point.content.video is not None:
            # unknown length: alone when segmenting (it may be long); as before when not
            weight = point.seconds if point.seconds is not None else (budget if policy is not None else 0.0)
        if not chunks or len(chunks[-1]) >= ADD_CHUNK or seconds_in_chunk + weight > budget:
            chunks.append([])
            seconds_in_chunk = 0.0
        chunks[-1].append(point)
        seconds_in_chunk += weight
    return chunks


def embed_chunk(
    embedder: OmniEmbedder, chunk: Sequence[PlannedPoint], *, errors: str = "raise"
) -> tuple[list[EmbeddedPoint], list[ItemFailure]]:
    """Stream vectors of a chunk; failures carry the caller's item index. Never touches a store."""
    embedded = embedder.embed_document_streams([p.content for p in chunk], errors="skip")
    failures = []
    for failure in embedded.failures:
        located = ItemFailure(
            index=chunk[failure.index].item_index, field=failure.field, reason=failure.reason
        )
        if errors != "skip":
            raise OmniInputError(located.reason, index=located.index, field=located.field)
        failures.append(located)
    done = [
        EmbeddedPoint(point, dict(streams))
        for point, streams in zip(chunk, embedded.embeddings, strict=True)
        if streams is not None
    ]
    return done, failures


def payload_of(point: PlannedPoint, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored payload: source, time range, segment index and user metadata (text included)."""
    extra = dict(point.content.metadata)
    extra.update(metadata or {})
    if point.content.text is not None:
        extra.setdefault("text", point.content.text)
    return {
        "source": point.source,
        "start_s": point.content.start_s,
        "end_s": point.content.end_s,
        "segment_index": extra.pop("segment_index", None),
        "metadata": extra,
    }


def write_chunk(
    store: OmniStore, done: Sequence[EmbeddedPoint], metadata: Sequence[Mapping[str, Any] | None] | None
) -> list[str]:
    """Upsert embedded points; returns their ids. Store errors propagate: the caller stops."""
    if not done:
        return []
    store.upsert(
        [e.point.point_id for e in done],
        [e.vectors for e in done],
        [payload_of(e.point, metadata[e.point.item_index] if metadata else None) for e in done],
    )
    return [e.point.point_id for e in done]


def delete_stale(store: OmniStore, written: Sequence[PlannedPoint]) -> None:
    """Remove what an item's new plan replaced: segments past its new end, its old single point
    when it is now segmented, and all its old segments when it is now one point."""
    whole = [p.point_id for p in written if p.segment_of is None]
    parents = {p.segment_of.item_id: p.segment_of.count for p in written if p.segment_of is not None}
    if parents:
        store.delete([i for i, p in zip(parents, store.get(list(parents)), strict=True) if p is not None])
    for item_id, first in [*parents.items(), *((i, 0) for i in _segmented(store, whole))]:
        store.delete(segment_ids(store, [item_id], first))


def segment_ids(store: OmniStore, item_ids: Sequence[str], first: int = 0) -> list[str]:
    """The stored segment ids ``<id>#<k>`` (from ``k = first``) of these items.

    Segments carry no parent id in their payload, so they are found as indexing writes them:
    numbered from 0 without gaps, read :data:`_PROBE` ids a round.
    """
    found: list[str] = []
    for item_id in dict.fromkeys(i for i in item_ids if "#" not in i):
        k = first
        while batch := [p.id for p in store.get([f"{item_id}#{j}" for j in range(k, k + _PROBE)]) if p]:
            found += batch
            k += _PROBE
    return found


def _segmented(store: OmniStore, item_ids: Sequence[str]) -> list[str]:
    """The items among ``item_ids`` whose first segment is stored: one round trip for all."""
    whole = [i for i in item_ids if "#" not in i]
    return [i for i, p in zip(whole, store.get([f"{i}#0" for i in whole]), strict=True) if p is not None]


def with_segments(store: OmniStore, item_ids: Sequence[str]) -> list[str]:
    """These ids (once each), then the stored segment ids of the items among them."""
    ids = list(dict.fromkeys(item_ids))
    return ids + segment_ids(store, _segmented(store, ids))


def delete_items(store: OmniStore, item_ids: Sequence[str]) -> int:
    """Delete items by id, each with its segments; returns the points deleted (unknown ids count 0)."""
    ids = list(dict.fromkeys(item_ids))
    stored = [i for i, p in zip(ids, store.get(ids), strict=True) if p is not None]
    doomed = list(dict.fromkeys(stored + segment_ids(store, _segmented(store, ids))))
    store.delete(doomed)
    return len(doomed)


@dataclass
class AddResult:
    """What :meth:`OmniRetriever.add <omni_rag.retriever.OmniRetriever.add>` did, item by item.

    Attributes:
        added: Point ids embedded and written (``<item id>#<k>`` for segments).
        unchanged: Point ids already in the store, skipped without embedding.
        failures: Items that could not be embedded (``errors="skip"``), with reasons.
        added_items: Input indices of items that had at least one point written.
        unchanged_items: Input indices of items whose points were all already stored.
        duplicates: Input index -> index of an earlier item in the same call with the same
            content (or id): one point per content, recorded at the first item's source; the copy
            is neither embedded nor written again.
        crashed: Input index -> ``"<error type>: <message>"`` for items whose chunk raised an
            unexpected error where it was embedded (a decoder or model crash on a worker) or was
            never embedded (a worker lost for good). Only remote embedding fills it; in-process,
            such an error propagates to the caller.
        item_ids: Input index -> the item's id (its content hash unless ``ids`` were given), for
            every planned item and duplicate: what a folder sync matches paths to points with.
    """

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    added_items: list[int] = field(default_factory=list)
    unchanged_items: list[int] = field(default_factory=list)
    duplicates: dict[int, int] = field(default_factory=dict)
    crashed: dict[int, str] = field(default_factory=dict)
    item_ids: dict[int, str] = field(default_factory=dict)


#: The fixed document whose embedding identifies a model by its weights, wherever it is loaded from.
FINGERPRINT_PROBE = "omni-rag model fingerprint probe: the quick brown fox jumps over the lazy dog."
_fingerprints: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def model_fingerprint(embedder: OmniEmbedder) -> str:
    """The embedding of :data:`FINGERPRINT_PROBE` as base64 float16: the same weights give the same
    vector from any path, copy or dtype (up to rounding), other weights another one.

    Computed once per embedder (one short forward pass).
    """
    cached = _fingerprints.get(embedder)
    if cached is None:
        vector = np.asarray(embedder.embed_documents([FINGERPRINT_PROBE], show_progress_bar=False)[0])
        cached = base64.b64encode(vector.astype("<f2").tobytes()).decode("ascii")
        _fingerprints[embedder] = cached
    return cached


def fingerprint_cosine(a: str, b: str) -> float:
    """Cosine between two fingerprints (``-1`` when their sizes differ)."""
    x, y = (np.frombuffer(base64.b64decode(f), dtype="<f2").astype(np.float64) for f in (a, b))
    if x.shape != y.shape or not x.any() or not y.any():
        return -1.0
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def model_info(embedder: OmniEmbedder) -> dict[str, Any]:
    """What a collection records about the model that filled it (checked before mixing models):
    its name and revision for people, its dimension and fingerprint for the check."""
    return {
        "model_id": embedder.model_id,
        "revision": embedder.revision,
        "dim": embedder.dim,
        "fingerprint": model_fingerprint(embedder),
    }


def crash_reason(error: BaseException) -> str:
    """How an unexpected error (not a bad item) is reported against each item it failed."""
    return f"{type(error).__name__}: {error}"


def claim_collection(store: OmniStore, model_info: Mapping[str, Any]) -> None:
    """Record the model in a collection that has none yet (the first write decides)."""
    if not store.get_info().get("model_id"):
        store.set_info(model_info)


@dataclass
class AddRun:
    """An add between planning and its summary: chunks to embed, and what was written so far.

    Whoever embeds the chunks (this process, Ray actors) hands the vectors to :meth:`record`,
    which writes them; :meth:`finish` deletes what re-planned items replaced and tells each
    item's fate. Writes are upserts under deterministic ids, so recording a chunk twice (a
    retried worker) writes the same points again, never new ones.
    """

    store: OmniStore
    plan: Plan
    pending: list[PlannedPoint]
    policy: SegmentPolicy | None
    metadata: Sequence[Mapping[str, Any] | None] | None
    result: AddResult
    written: list[PlannedPoint] = field(default_factory=list)

    def chunks(self, items_per_group: int | None = None) -> list[list[PlannedPoint]]:
        """:func:`chunk_points` of the pending points; with ``items_per_group``, chunks never mix
        items of different groups of that many consecutive items (what adding the items that many
        at a time gives, so batches, and hence vectors, match such a run)."""
        if items_per_group is None:
            return chunk_points(self.pending, self.policy)
        groups: dict[int, list[PlannedPoint]] = {}
        for point in self.pending:
            groups.setdefault(point.item_index // items_per_group, []).append(point)
        return [chunk for key in sorted(groups) for chunk in chunk_points(groups[key], self.policy)]

    def record(self, done: Sequence[EmbeddedPoint], failures: Sequence[ItemFailure]) -> None:
        """Write one embedded chunk and note its failures. Store errors propagate: the caller stops."""
        self.result.failures.extend(failures)
        self.result.added.extend(write_chunk(self.store, done, self.metadata))
        self.written.extend(e.point for e in done)

    def record_crash(self, chunk: Sequence[PlannedPoint], reason: str) -> None:
        """Fail every item of a chunk that raised (or was lost) where it was embedded."""
        for point in chunk:
            self.result.crashed.setdefault(point.item_index, reason)

    def finish(self) -> AddResult:
        """Delete what the new plans replaced; per-item outcome: added, unchanged or failed."""
        delete_stale(self.store, self.written)
        result = self.result
        result.failures.sort(key=lambda f: f.index)
        failed = {f.index for f in result.failures} | set(result.crashed)
        written = set(result.added)
        pending_items = {p.item_index for p in self.pending}
        result.added_items = sorted({p.item_index for p in self.pending if p.point_id in written} - failed)
        result.unchanged_items = sorted(self.plan.planned_items - failed - pending_items)
        return result


def begin_add(
    store: OmniStore,
    items: Sequence[ItemLike],
    *,
    ids: Sequence[str] | None = None,
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    errors: str = "raise",
    overwrite: bool = False,
    copies: LocalCopies | None = None,
    model_info: Mapping[str, Any] | None = None,
) -> AddRun:
    """Plan items and drop those already stored; nothing is embedded yet.

    Args:
        model_info: Recorded in a collection without one when there is work to do; ``None``
            when the caller learns the model only from the first embedded chunk (remote
            embedding), and calls :func:`claim_collection` then.
    """
    plan = plan_items(items, ids, policy, errors=errors, copies=copies)
    pending, unchanged = (list(plan.points), []) if overwrite else drop_unchanged(store, plan.points)
    if pending and model_info is not None:
        claim_collection(store, model_info)
    result = AddResult(
        unchanged=unchanged, failures=list(plan.failures), duplicates=plan.duplicates, item_ids=plan.item_ids
    )
    return AddRun(store, plan, pending, policy, metadata, result)
