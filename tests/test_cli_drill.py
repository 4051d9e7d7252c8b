"""``kill -9`` in the middle of ``omni-rag index``: the store reopens, keeps what was written, and a
re-run finishes with every file once.

The store-level drill (``test_store_engines.py``) checks that every acknowledged upsert survives;
this one runs the real command on a tiny checkpoint and kills it while its write-ahead log grows.
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


def _wal_bytes(store: Path) -> int:
    wal = store / "edge" / "drill" / "shard" / "wal"
    return sum(f.stat().st_size for f in wal.rglob("*") if f.is_file()) if wal.is_dir() else 0


def _kill_once_writing(process: subprocess.Popen[str], store: Path, timeout_s: float = 300) -> None:
    """SIGKILL ``process`` once its WAL has grown past what creating the collection writes."""
    deadline = time.monotonic() + timeout_s
    baseline: int | None = None
    while time.monotonic() < deadline and process.poll() is None:
        size = _wal_bytes(store)
        if size and baseline is None:
            baseline = size
        if baseline is not None and size > baseline + 64 * 1024:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the index finished before the kill: raise FILES"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _sources(store: Path) -> list[str]:
    with OmniStore("drill", path=str(store)) as s:
        return [str(p.payload["source"]) for p in s.scroll()]


def test_kill_9_mid_index_then_rerun_has_every_file_once(tmp_path: Path, native_checkpoint: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(FILES):
        (docs / f"note{i:04d}.txt").write_text(f"Note {i}: bees, flowers and item {i * 7919 % 1000}.\n")
    store = tmp_path / "store"
    args = ("index", docs, "-c", "drill", "--store", store, "--model", native_checkpoint, "-q")
    _kill_once_writing(start(*args), store)

    kept = _sources(store)  # reopens after the kill: no corruption, no lock left behind
    assert 0 < len(kept) < FILES
    assert len(set(kept)) == len(kept)

    rerun = run(*args)
    assert rerun.returncode == 0, explain(rerun)
    final = _sources(store)
    counts = Counter(final)
    assert max(counts.values()) == 1, "a file was indexed twice"
    assert set(final) == {str(p) for p in docs.iterdir()}, "a file was skipped"
    assert set(kept) <= set(final)
