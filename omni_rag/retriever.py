"""``OmniRetriever``: embed items into an :class:`OmniStore`, search it with any modality.

This is the one place that joins the embedder and the store; the LlamaIndex and
LangChain retrievers and the CLI are thin layers over it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omni_rag.content import ItemLike, require_list
from omni_rag.errors import ModelMismatchError, OmniInputError
from omni_rag.indexing import (
    ADD_CHUNK,
    AddResult,
    LocalCopies,
    begin_add,
    content_id,
    delete_items,
    embed_chunk,
    fingerprint_cosine,
    media_items,
    model_info,
    resolve_policy,
    source_of,
)
from omni_rag.segments import SegmentPolicy
from omni_rag.store import FusionMode, Hit, HitGroup, OmniStore

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder
    from omni_rag.folders import FolderReport

__all__ = [
    "ADD_CHUNK",
    "AddResult",
    "ModelMismatchError",
    "OmniRetriever",
    "check_model_info",
    "content_id",
    "source_of",
]


#: Fingerprint cosine from which two models are the same weights: one model in bf16 and in fp32
#: stays above 0.999, other weights (even a fine-tune of the same base) fall well below.
FINGERPRINT_MIN_COSINE = 0.995


def check_model_info(store: OmniStore, mine: Mapping[str, Any]) -> None:
    """Refuse to mix vectors of different models in one collection.

    A model is identified by what it is: the embedding of a fixed probe (its fingerprint, recorded
    at the first write) must match, so a copy or a link to the same weights is accepted from any
    path, and other weights under the same path are refused. Collections recorded before
    fingerprints fall back to the checkpoint's name, revision and dimension.

    Raises:
        ModelMismatchError: naming both models.
    """
    info = store.get_info()
    recorded = info.get("model_id")
    if recorded is None:
        return
    theirs, ours = info.get("fingerprint"), mine.get("fingerprint")
    why = ""
    if info.get("dim") != mine["dim"]:
        why = "other vector size"
    elif isinstance(theirs, str) and isinstance(ours, str):
        cosine = fingerprint_cosine(theirs, ours)
        if cosine < FINGERPRINT_MIN_COSINE:
            why = f"other weights: the fingerprint probe embeds to cosine {cosine:.3f} of the recorded one"
    elif (
        Path(str(recorded)).name != Path(str(mine["model_id"])).name
        or info.get("revision") != mine["revision"]
    ):
        why = "other checkpoint name or revision"
    if why:
        raise ModelMismatchError(
            f"collection {store.collection!r} was indexed with {recorded} "
            f"(revision {info.get('revision')}, dim {info.get('dim')}); this embedder is "
            f"{mine['model_id']} (revision {mine['revision']}, dim {mine['dim']}): {why}. "
            "Use the same model, or index into another collection."
        )


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
        _check_parts(embedder, store)
        self.embedder = embedder
        self.store = store
        self.k = _check_k(k)
        self.fusion: FusionMode = fusion
        self.streams = list(streams) if streams is not None else None
        self.weights = dict(weights) if weights is not None else None

    # -- model bookkeeping ------------------------------------------------------------------------

    def model_info(self) -> dict[str, Any]:
        """What the collection records about the model that filled it."""
        return model_info(self.embedder)

    def check_model(self) -> None:
        """Refuse to mix vectors of different models in one collection.

        Raises:
            ModelMismatchError: naming both models.
        """
        check_model_info(self.store, self.model_info())

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
        policy = resolve_policy(segment)
        self.check_model()
        with ExitStack() as downloads:
            run = begin_add(
                self.store,
                items,
                ids=ids,
                metadata=metadata,
                policy=policy,
                errors=errors,
                overwrite=overwrite,
                copies=LocalCopies(downloads),
                model_info=self.model_info(),
            )
            for chunk in run.chunks():
                run.record(*embed_chunk(self.embedder, chunk, errors=errors))
        return run.finish()

    def add_media(
        self,
        items: Sequence[ItemLike | os.PathLike[str]],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        errors: str = "raise",
        overwrite: bool = False,
        segment: SegmentPolicy | bool | None = True,
    ) -> AddResult:
        """:meth:`add` where a path means what ``omni-rag index`` makes of the file (same id, points).

        The framework stores' ``add_media`` call this. A missing or unreadable path fails with its
        index, or with ``errors="skip"`` is listed in the result's ``failures`` while the other
        items are added.
        """
        _check_items(items)
        if ids is not None:
            _check_ids(ids, len(items))
        if metadata is not None and len(metadata) != len(items):
            raise ValueError(f"{len(metadata)} metadata entries for {len(items)} items")
        found = media_items(items, errors=errors)
        at = found.positions
        result = self.add(
            found.items,
            ids=[ids[i] for i in at] if ids is not None else None,
            metadata=[metadata[i] for i in at] if metadata is not None else None,
            errors=errors,
            overwrite=overwrite,
            segment=segment,
        )
        return found.restore(result)

    def add_folder(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        exclude: Sequence[str] = (),
        follow_external_links: bool = False,
        max_text_mb: float = 4.0,
        keep_missing: bool = False,
        batch_size: int = 8,
        segment: SegmentPolicy | bool | None = True,
    ) -> FolderReport:
        """Index folders (and files) and make the collection follow them, as ``omni-rag index`` does.

        Each file is probed for what it holds and embedded once per content; a file that moved or
        was copied is not embedded again (its points record every path, ``metadata.paths``), an
        edited file is re-embedded, and the points of files gone from these folders are removed
        (``keep_missing=True`` keeps them). A folder that is missing or empty removes nothing.

        Args:
            paths: A folder or file, or a list of them.
            exclude: Gitignore-like patterns (see :class:`omni_rag.scan.ScanOptions`).
            follow_external_links: Index files whose real path lies outside ``paths``.
            max_text_mb: Text files larger than this are skipped (reported).
            keep_missing: Keep the points of files that vanished.
            batch_size: Files per add.
            segment: As in :meth:`add`.

        Returns:
            File by file: added, unchanged, moved, updated, removed, duplicates, skipped, failed.
        """
        from omni_rag.folders import index_folder
        from omni_rag.scan import ScanOptions, scan_paths

        roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not 0 < max_text_mb < 2**20:
            raise ValueError(f"max_text_mb must be > 0, got {max_text_mb!r}")
        options = ScanOptions(
            exclude=list(exclude),
            follow_external_links=follow_external_links,
            max_text_bytes=int(max_text_mb * 2**20),
        )
        scan = scan_paths(roots, options=options)
        return index_folder(
            self, scan, chunk=max(1, batch_size), policy=resolve_policy(segment), keep_missing=keep_missing
        )

    def delete(self, ids: Sequence[str]) -> int:
        """Delete items by the ids :meth:`add` gave them, each with its segments ``<id>#<k>``.

        Unknown ids are ignored; a segment id (``<id>#<k>``) deletes that segment alone.

        Returns:
            The points deleted.
        """
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, not one string")
        return delete_items(self.store, ids)

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
        return self.search_vector(
            self.embed_query(query), k=limit, streams=streams, fusion=fusion, weights=weights, filter=filter
        )

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        k: int | None = None,
        streams: Sequence[str] | None = None,
        fusion: FusionMode | None = None,
        weights: Mapping[str, float] | None = None,
        filter: Any = None,
    ) -> list[Hit]:
        """:meth:`search` for a query already embedded."""
        return self.search_vectors(
            [vector], k=k, streams=streams, fusion=fusion, weights=weights, filter=filter
        )[0]

    def search_vectors(
        self,
        vectors: Sequence[np.ndarray],
        *,
        k: int | None = None,
        streams: Sequence[str] | None = None,
        fusion: FusionMode | None = None,
        weights: Mapping[str, float] | None = None,
        filter: Any = None,
    ) -> list[list[Hit]]:
        """Hits for several embedded queries at once (``omni-rag serve``'s micro-batches), per query.

        The same hits as :meth:`search_vector` for each, in one store call
        (:meth:`~omni_rag.store.OmniStore.search_many`).
        """
        limit = _check_k(self.k if k is None else k)
        return self.store.search_many(
            vectors,
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


#: What an embedder must offer to index and search (an :class:`OmniEmbedder` or a compatible object).
_EMBEDDER_API = ("embed_queries", "embed_document_streams", "model_id", "revision", "dim")


def _check_parts(embedder: object, store: object) -> None:
    """Refuse a wrong object now, not with an ``AttributeError`` at the first add or search."""
    missing = [name for name in _EMBEDDER_API if not hasattr(embedder, name)]
    if missing:
        raise OmniInputError(
            f"expected an OmniEmbedder, got {type(embedder).__name__} {embedder!r:.60} "
            f"(lacks {', '.join(missing)})",
            field="embedder",
        )
    if not isinstance(store, OmniStore):
        raise OmniInputError(
            f"expected an OmniStore, got {type(store).__name__} {store!r:.60}", field="store"
        )


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return k


def _check_items(items: object) -> None:
    """Refuse one item passed where a list is expected (a string would index each character)."""
    require_list(items)


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
