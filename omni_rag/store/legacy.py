"""omni-rag 0.1 stores (qdrant-client local folders): detect them (:mod:`.migration` moves them).

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
from pathlib import Path

from omni_rag.store.errors import LegacyStoreError

BACKUP_DIR = "legacy-0.1"
SCRATCH = ".migrate-0.1"


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
