"""``kill -9`` in the middle of ``omni-rag index``: the store reopens, keeps what was written, and a
re-run finishes with every file once.

The store-level drill (``test_store_engines.py``) checks that every acknowledged upsert survives;
this one runs the real command on a tiny checkpoint and kills it while it writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from omni_rag.store import OmniStore
from tests.test_cli import explain, run, start

FILES = 3000


def _kill_while_writing(process: subprocess.Popen[str], store: Path, timeout_s: float = 300) -> None:
    """SIGKILL ``process`` 1.5 s after its first write created the collection's write-ahead log.

    The CLI shows no progress without a terminal and Edge preallocates its WAL files, so the time
    since the collection appeared is the signal; the test then checks the kill landed mid-run.
    """
    wal = store / "edge" / "drill" / "shard" / "wal"
    deadline = time.monotonic() + timeout_s
    while not wal.is_dir() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    time.sleep(1.5)
    assert process.poll() is None, "the index finished before the kill: raise FILES"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _ids(store: Path) -> list[str]:
    with OmniStore("drill", path=str(store)) as s:
        return [p.id for p in s.scroll()]


def test_kill_9_mid_index_then_rerun_has_every_file_once(tmp_path: Path, native_checkpoint: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(FILES):
        (docs / f"note{i:04d}.txt").write_text(f"Note {i}: bees, flowers and item {i * 7919 % 1000}.\n")
    store = tmp_path / "store"
    args = ("index", docs, "-c", "drill", "--store", store, "--model", native_checkpoint, "-q")
    _kill_while_writing(start(*args), store)

    kept = _ids(store)  # reopens after the kill: no corruption, no lock left behind
    assert 0 < len(kept) < FILES
    assert len(set(kept)) == len(kept)

    rerun = run(*args)
    assert rerun.returncode == 0, explain(rerun)
    final = _ids(store)
    assert max(Counter(final).values()) == 1, "a file was indexed twice"
    assert len(final) == FILES, "a file was skipped"
    assert set(kept) <= set(final)
    assert f"{FILES - len(kept)} added" in rerun.stdout and f"{len(kept)} unchanged" in rerun.stdout


SYNC_FILES = 1500


def _wal_state(store: Path, collection: str) -> dict[str, int]:
    wal = store / "edge" / collection / "shard" / "wal"
    return {p.name: p.stat().st_mtime_ns for p in wal.iterdir()} if wal.is_dir() else {}


def _recorded(store: Path, collection: str) -> tuple[list[str], list[str]]:
    """Point ids and every recorded path (one entry per point and path)."""
    with OmniStore(collection, path=str(store)) as s:
        points = list(s.scroll(with_vectors=False))
    paths = [
        p
        for point in points
        for p in point.payload["metadata"].get("paths", [point.payload["metadata"]["path"]])
    ]
    return [p.id for p in points], paths


def test_kill_9_mid_sync_then_rerun_matches_the_folder(tmp_path: Path, native_checkpoint: Path) -> None:
    """Moves and removals only (nothing to embed): the first write-ahead-log write of the re-index is
    the sync's, and the kill lands right after it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(SYNC_FILES):
        (docs / f"note{i:04d}.txt").write_text(f"Note {i}: bees, flowers and item {i * 7919 % 1000}.\n")
    store = tmp_path / "store"
    args = ("index", docs, "-c", "sync", "--store", store, "--model", native_checkpoint, "-q")
    first = run(*args)
    assert first.returncode == 0, explain(first)
    third = SYNC_FILES // 3
    for i in range(third):
        (docs / f"note{i:04d}.txt").rename(docs / f"moved{i:04d}.txt")
        (docs / f"note{third + i:04d}.txt").unlink()
    wanted = sorted(str(p.resolve()) for p in docs.iterdir())

    before = _wal_state(store, "sync")
    process = start(*args)
    deadline = time.monotonic() + 300
    while _wal_state(store, "sync") == before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the sync finished before the kill: raise SYNC_FILES"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    ids, paths = _recorded(store, "sync")  # reopens after the kill
    assert len(set(ids)) == len(ids) and len(ids) <= SYNC_FILES
    done_moves = sum(p.startswith(str(docs.resolve() / "moved")) for p in paths)
    assert 0 < done_moves + (SYNC_FILES - len(ids)) < 2 * third, "the kill did not land mid-sync"

    rerun = run(*args)
    assert rerun.returncode == 0, explain(rerun)
    assert "0 added" in rerun.stdout and "0 updated" in rerun.stdout
    ids, paths = _recorded(store, "sync")
    assert len(ids) == len(set(ids)) == SYNC_FILES - third, "a point was lost or duplicated"
    assert sorted(paths) == wanted
    again = run(*args)
    assert f"0 added, {SYNC_FILES - third} unchanged" in again.stdout and "0 moved, 0 removed" in again.stdout
