"""omni-rag 0.1 stores (qdrant-client local folders): detect them and migrate them to Qdrant Edge.

0.1 kept an embedded store as qdrant-client's local mode writes it (``meta.json`` and
``collection/<name>/storage.sqlite``). 0.2 reads the same folder with Qdrant Edge (``edge/<name>``).
Nothing is converted behind the user's back: opening a 0.1 collection raises
:class:`~omni_rag.store.errors.LegacyStoreError` naming the command, and :func:`migrate_store`
copies every point into a scratch folder, moves the finished copy into place in one rename, and
only then moves the old files to ``legacy-0.1/``. A crash at any step leaves the old collection
readable and a re-run finishes the job.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omni_rag.store.errors import LegacyStoreError
from omni_rag.store.models import CALLER_PAYLOAD_KEYS, INFO_METADATA_KEY

BACKUP_DIR = "legacy-0.1"
_SCRATCH = ".migrate-0.1"


def legacy_collections(path: str | os.PathLike[str]) -> list[str]:
    """0.1 collections in a store folder that have not been migrated yet."""
    root = Path(path)
    old = root / "collection"
    if not old.is_dir():
        return []
    return sorted(
        p.name for p in old.iterdir() if p.is_dir() and not (root / "edge" / p.name / "shard").is_dir()
    )


def check_not_legacy(path: str | os.PathLike[str], collection: str) -> None:
    """Raise if ``collection`` in ``path`` is still in the 0.1 layout.

    Raises:
        LegacyStoreError: With the command that migrates it.
    """
    if collection in legacy_collections(path):
        raise LegacyStoreError(
            f"the store at {Path(path).resolve()} was written by omni-rag 0.1 (qdrant-client local mode); "
            f"collection {collection!r} must be migrated once to the Qdrant Edge engine: run "
            f"`omni-rag migrate --store {path}` (the old files are kept in {BACKUP_DIR}/ "
            "until you delete them)"
        )


@dataclass
class MigrationReport:
    """What :func:`migrate_store` did.

    Attributes:
        copied: Points copied per collection.
        backup: Folder now holding the 0.1 files, or ``None`` when nothing was migrated.
    """

    copied: dict[str, int] = field(default_factory=dict)
    backup: Path | None = None


def migrate_store(
    path: str | os.PathLike[str], *, progress: Callable[[str, int], None] | None = None
) -> MigrationReport:
    """Copy every 0.1 collection in ``path`` to the Qdrant Edge layout, keeping the old files.

    Args:
        path: The store folder (``--store``).
        progress: Called with (collection, points copied so far) after each batch.
    """
    from qdrant_client import QdrantClient

    root = Path(path)
    report = MigrationReport()
    pending = legacy_collections(root)
    if (root / "collection").is_dir():
        client = QdrantClient(path=str(root))
        try:
            for name in pending:
                report.copied[name] = _copy_collection(client, root, name, progress)
        finally:
            client.close()
    if (root / "collection").is_dir() or (root / "meta.json").is_file():
        report.backup = _move_old_files(root)
    return report


def _copy_collection(
    client: object, root: Path, name: str, progress: Callable[[str, int], None] | None
) -> int:
    from omni_rag.store.store import OmniStore

    scratch = root / _SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)  # a copy that died half-way
    info = client.get_collection(name).config  # type: ignore[attr-defined]
    vectors = info.params.vectors
    dim = next(iter(vectors.values())).size
    copied, offset = 0, None
    with OmniStore(name, path=str(scratch), dim=dim) as target:
        target.set_info(dict((info.metadata or {}).get(INFO_METADATA_KEY) or {}))
        while True:
            records, offset = client.scroll(  # type: ignore[attr-defined]
                name, offset=offset, limit=256, with_payload=True, with_vectors=True
            )
            if records:
                payloads = [dict(r.payload or {}) for r in records]
                target.upsert(
                    [str(p["id"]) for p in payloads],
                    [dict(r.vector) for r in records],
                    [{k: v for k, v in p.items() if k in CALLER_PAYLOAD_KEYS} for p in payloads],
                )
                copied += len(records)
                if progress is not None:
                    progress(name, copied)
            if offset is None:
                break
        target.optimize()
    (root / "edge").mkdir(exist_ok=True)
    os.replace(scratch / "edge" / name, root / "edge" / name)  # the finished copy appears at once
    shutil.rmtree(scratch, ignore_errors=True)
    return copied


def _move_old_files(root: Path) -> Path:
    """Move 0.1's files aside (never delete them); only collections already copied are moved."""
    backup = root / BACKUP_DIR
    (backup / "collection").mkdir(parents=True, exist_ok=True)
    old = root / "collection"
    if old.is_dir():
        for folder in list(old.iterdir()):
            if (root / "edge" / folder.name / "shard").is_dir():
                os.replace(folder, backup / "collection" / folder.name)
        if not any(old.iterdir()):
            old.rmdir()
    for name in ("meta.json", ".lock"):
        if (root / name).is_file() and not old.is_dir():
            os.replace(root / name, backup / name)
    return backup
