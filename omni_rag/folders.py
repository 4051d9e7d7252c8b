"""Index folders and keep a collection in step with them: what is on disk is what is searched.

A file's points are identified by its content (the content-hash id), and carry every path that
holds that content (``metadata.paths``). Re-indexing a folder therefore needs no embedding for a
file that only moved or was copied: :func:`sync_folder` rewrites the paths on its points. A file
that is gone loses its path, and a point left with no path is removed; an edited file is a new
content (embedded) whose path leaves the old point. Only paths under the folders (or equal to the
files) of this run are touched: a root that is missing, or empty as an unmounted mount point is,
removes nothing.

Every step is an idempotent write computed from the folder and the store alone, so a run killed at
any point is finished by running it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from omni_rag.content import Content
from omni_rag.errors import MediaError
from omni_rag.indexing import crash_reason
from omni_rag.scan import FileItem, FileProblem, FileScan, ScanRoot, shown
from omni_rag.segments import DEFAULT_POLICY, SegmentPolicy
from omni_rag.store import OmniStore, StoreError

if TYPE_CHECKING:
    from omni_rag.indexing import AddResult
    from omni_rag.retriever import OmniRetriever

#: Points whose payload is rewritten per store round trip.
_REWRITE_BATCH = 64
#: Points deleted per store round trip.
_DELETE_BATCH = 256


@dataclass
class FolderReport:
    """What indexing files did, file by file.

    Attributes:
        added: Files embedded and written (new content).
        unchanged: Files already in the collection (same content), not embedded again; a new copy
            of stored content is recorded on its point and counted here.
        duplicates: (file, earlier file of the same chunk with the same new content): one point
            records both paths.
        moved: (old path, new path) of content that left one path for another: not embedded again.
        updated: Files whose content changed: embedded again, their old points lost this path.
        removed: Paths that vanished from the folders: their points lost them (removed when none is left).
        skipped: Files that are not media or text (or not regular files, or links out of the folder).
        notes: Files indexed with a remark (text decoded in a guessed encoding).
        failures: Missing paths and files that could not be read or embedded, with reasons.
        seconds: Wall time of the embedding and sync.
        warnings: Remarks about the options (an exclude pattern that matched nothing).
        item_ids: Path -> id of the content it holds now (files whose fate is known).
        written: Ids of contents embedded by this run.
    """

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)
    notes: list[FileProblem] = field(default_factory=list)
    failures: list[FileProblem] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    item_ids: dict[str, str] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)

    @classmethod
    def from_scan(cls, scan: FileScan) -> Self:
        """A report that starts with what the scan already decided (skipped, failed, notes)."""
        return cls(
            skipped=list(scan.skipped),
            failures=list(scan.failures),
            notes=list(scan.notes),
            warnings=list(scan.warnings),
        )

    def record(self, files: Sequence[FileItem], result: AddResult) -> None:
        """File by file, what an add of ``files`` (in that order) did; the one place both the
        in-process and the Ray path turn item indices into paths and reasons."""
        for f in result.failures:
            self.failures.append(FileProblem(str(files[f.index].path), f"{f.field}: {f.reason}"))
        for index, reason in sorted(result.crashed.items()):
            self.failures.append(FileProblem(str(files[index].path), reason))
        self.added.extend(str(files[i].path) for i in result.added_items)
        self.unchanged.extend(str(files[i].path) for i in result.unchanged_items)
        # a copy of content stored before (by an earlier run or chunk) is unchanged, not news
        added = set(result.added_items)
        for i, j in result.duplicates.items():
            if j in added:
                self.duplicates.append((str(files[i].path), str(files[j].path)))
            elif j in result.unchanged_items:
                self.unchanged.append(str(files[i].path))
            else:
                reason = f"same content as {shown(files[j].path)}, which was not indexed"
                self.failures.append(FileProblem(str(files[i].path), reason))
        known = [*result.added_items, *result.unchanged_items, *result.duplicates]
        self.item_ids.update((str(files[i].path), result.item_ids[i]) for i in known if i in result.item_ids)
        self.written.update(result.item_ids[i] for i in result.added_items if i in result.item_ids)

    def record_crash(self, files: Sequence[FileItem], reason: str) -> None:
        """Fail every file of a batch whose add raised unexpectedly (the run goes on)."""
        self.failures.extend(FileProblem(str(item.path), reason) for item in files)


def read_batch(
    batch: Sequence[FileItem], report: FolderReport, max_text_bytes: int
) -> tuple[list[FileItem], list[Content]]:
    """The files of a chunk that can still be read, and their content: text is read now, as it is
    embedded, not at scan time; a file that vanished or became unreadable fails alone."""
    ready, contents = [], []
    for item in batch:
        try:
            contents.append(item.read(max_text_bytes))
        except (OSError, MediaError) as error:
            report.failures.append(FileProblem(shown(item.path), f"cannot read: {error}"))
            continue
        ready.append(item)
    return ready, contents


def add_files(
    retriever: OmniRetriever,
    scan: FileScan,
    report: FolderReport,
    *,
    chunk: int = 8,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Add the scanned files ``chunk`` at a time; ``progress`` is told how many files each chunk held.

    Raises:
        ModelMismatchError: The collection holds another model's vectors.
        StoreError: A write failed (the caller stops: embedding on would be lost work).
    """
    from omni_rag.retriever import ModelMismatchError

    for offset in range(0, len(scan.items), chunk):
        batch, contents = read_batch(scan.items[offset : offset + chunk], report, scan.max_text_bytes)
        if batch:
            try:
                result = retriever.add(contents, errors="skip", segment=policy)
            except (ModelMismatchError, StoreError):
                raise
            except Exception as error:  # a decoder or model crash on one chunk must not lose the others
                report.record_crash(batch, crash_reason(error))
            else:
                report.record(batch, result)
        if progress is not None:
            progress(min(chunk, len(scan.items) - offset))


# ---------------------------------------------------------------------------------------- sync


@dataclass
class _Recorded:
    """The points of one content and the paths they record."""

    point_ids: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    stale: bool = False  # a point lacks the path list, or points disagree (a rewrite cut short)


class _Scope:
    """Which recorded paths this run speaks for: under a given folder that has entries, or a given file."""

    def __init__(self, roots: Iterable[ScanRoot], unreadable: Iterable[Path] = ()) -> None:
        self.folders = [str(r.path) for r in roots if r.folder and not r.empty]
        self.files = {str(r.path) for r in roots if not r.folder}
        self.empty = [str(r.path) for r in roots if r.folder and r.empty]
        self.unreadable = [str(p) for p in unreadable]  # folders not listed: what they hold is unknown

    def covers(self, path: str) -> bool:
        if any(path == folder or _under(path, folder) for folder in self.unreadable):
            return False
        return path in self.files or any(_under(path, folder) for folder in self.folders)


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def recorded_paths(payload: dict[str, Any]) -> list[str]:
    """Every path a point records: ``metadata.paths``, else its one ``metadata.path`` or ``source``."""
    metadata = payload.get("metadata") or {}
    paths = metadata.get("paths")
    if isinstance(paths, list):
        return [str(p) for p in paths]
    single = metadata.get("path") or payload.get("source")
    return [str(single)] if single else []


def _recorded(store: OmniStore) -> dict[str, _Recorded]:
    """Content id -> its points and recorded paths, for every point that records a path."""
    groups: dict[str, _Recorded] = {}
    for point in store.scroll(with_vectors=False):
        paths = recorded_paths(point.payload)
        if not paths:
            continue
        group = groups.setdefault(point.id.split("#", 1)[0], _Recorded())
        listed = (point.payload.get("metadata") or {}).get("paths")
        group.stale = (
            group.stale or listed is None or (bool(group.point_ids) and sorted(paths) != group.paths)
        )
        group.point_ids.append(point.id)
        group.paths = sorted(set(group.paths) | set(paths))
    return groups


def sync_folder(
    store: OmniStore, scan: FileScan, report: FolderReport, *, keep_missing: bool = False
) -> None:
    """Make the collection's paths match the scanned folders: record moves and copies, drop gone paths.

    Run after the files were added. Paths outside the scanned roots, and paths of files that
    failed in this run, keep what they had. ``keep_missing`` keeps the paths of files that vanished.
    """
    scope = _Scope(scan.roots, scan.unreadable)
    groups = _recorded(store)
    for folder in scope.empty:
        if any(_under(p, folder) for g in groups.values() for p in g.paths):
            report.failures.append(
                FileProblem(folder, "folder is empty (not mounted?): nothing indexed under it was removed")
            )
    failed = {p.path for p in report.failures}
    now: dict[str, set[str]] = {}
    for path, item_id in report.item_ids.items():
        now.setdefault(item_id, set()).add(path)
    owners: dict[str, set[str]] = {}
    for item_id, group in groups.items():
        if item_id not in report.written:
            for path in group.paths:
                owners.setdefault(path, set()).add(item_id)
    _classify(report, groups, now, owners, scope, failed, keep_missing)
    rewrites: list[tuple[str, list[str]]] = []
    deletes: list[str] = []
    for item_id, group in groups.items():
        keep = {
            p
            for p in group.paths
            if not scope.covers(p)
            or p in failed
            or (keep_missing and p not in report.item_ids and not os.path.lexists(p))
        }
        paths = sorted(keep | now.get(item_id, set()))
        if not paths:
            deletes.extend(group.point_ids)
        elif paths != group.paths or group.stale:
            rewrites.extend((point_id, paths) for point_id in group.point_ids)
    for start in range(0, len(rewrites), _REWRITE_BATCH):
        _rewrite_paths(store, rewrites[start : start + _REWRITE_BATCH])
    for start in range(0, len(deletes), _DELETE_BATCH):
        store.delete(deletes[start : start + _DELETE_BATCH])


def _classify(
    report: FolderReport,
    groups: dict[str, _Recorded],
    now: dict[str, set[str]],
    owners: dict[str, set[str]],
    scope: _Scope,
    failed: set[str],
    keep_missing: bool,
) -> None:
    """Turn stored-before files into moved, edited ones into updated, and vanished paths into removed."""
    updated = {p for p, item in report.item_ids.items() if owners.get(p) and item not in owners[p]}
    moved: list[tuple[str, str]] = []
    removed: list[str] = []
    for item_id, group in groups.items():
        if item_id in report.written:
            continue
        gone = sorted(
            p for p in group.paths if scope.covers(p) and p not in report.item_ids and p not in failed
        )
        if keep_missing:
            gone = [p for p in gone if os.path.lexists(p)]  # vanished ones are kept; excluded ones go
        gained = sorted(p for p in now.get(item_id, set()) if p not in group.paths and p not in updated)
        moved.extend(zip(gone, gained, strict=False))
        removed.extend(gone[len(gained) :])
    moved_to = {new for _, new in moved}
    report.moved.extend(moved)
    report.removed.extend(removed)
    report.updated.extend(p for p in [*report.added, *report.unchanged] if p in updated)
    report.added[:] = [p for p in report.added if p not in updated]
    report.unchanged[:] = [p for p in report.unchanged if p not in updated and p not in moved_to]


def _rewrite_paths(store: OmniStore, batch: Sequence[tuple[str, list[str]]]) -> None:
    """Record new paths on points (their vectors are written back as they are: no embedding)."""
    paths_of = dict(batch)
    points = [p for p in store.get([point_id for point_id, _ in batch]) if p is not None]
    if points:
        store.upsert(
            [p.id for p in points],
            [p.vectors for p in points],
            [_with_paths(p.payload, paths_of[p.id]) for p in points],
        )


def _with_paths(payload: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    metadata = dict(payload.get("metadata") or {})
    metadata.update(paths=list(paths), path=paths[0], name=Path(paths[0]).name)
    return {
        "source": paths[0] if payload.get("source") is not None else None,
        "start_s": payload.get("start_s"),
        "end_s": payload.get("end_s"),
        "segment_index": payload.get("segment_index"),
        "metadata": metadata,
    }


def index_folder(
    retriever: OmniRetriever,
    scan: FileScan,
    *,
    chunk: int = 8,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    keep_missing: bool = False,
    progress: Callable[[int], None] | None = None,
    report: FolderReport | None = None,
) -> FolderReport:
    """Add the scanned files, then sync the collection to the scanned folders (see :func:`sync_folder`)."""
    report = report if report is not None else FolderReport.from_scan(scan)
    start = time.perf_counter()
    retriever.check_model()
    add_files(retriever, scan, report, chunk=chunk, policy=policy, progress=progress)
    sync_folder(retriever.store, scan, report, keep_missing=keep_missing)
    report.seconds = time.perf_counter() - start
    return report
