"""Migrate omni-rag 0.1 stores (qdrant-client local folders) to the Qdrant Edge layout.

:func:`migrate_store` copies every point into a scratch folder, moves the finished copy into
place in one rename, and only then moves the old files to ``legacy-0.1/``. A crash at any step
leaves the old collection readable and a re-run finishes the job. (Detection, which the store
needs at open, lives in :mod:`.legacy`; this module needs the store, so the two stay apart.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omni_rag.store.legacy import BACKUP_DIR, SCRATCH, legacy_collections
from omni_rag.store.models import CALLER_PAYLOAD_KEYS, INFO_METADATA_KEY
from omni_rag.store.store import OmniStore


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
    scratch = root / SCRATCH
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
