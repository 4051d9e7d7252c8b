"""The embedded index maintains itself (issue 26): builds past ``index_threshold``, survives kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omni_rag.retriever import OmniRetriever
from omni_rag.store import OmniStore, StoreInputError

DIM = 256


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_retriever_add_past_the_threshold_leaves_the_collection_indexed(
    embedder: Any, tmp_path: Path
) -> None:
    store = OmniStore("docs", path=str(tmp_path / "db"), index_threshold=40)
    retriever = OmniRetriever(embedder, store)
    texts = [f"note number {i} about topic {i % 7}" for i in range(30)]
    retriever.add(texts, ids=[f"a{i}" for i in range(30)])
    assert store.index_info().indexed_vectors == 0  # 30 < 40: still scanned exactly
    more = [f"second note {i} on subject {i % 5}" for i in range(20)]
    retriever.add(more, ids=[f"b{i}" for i in range(20)])  # 50 written: past the threshold
    info = store.index_info()
    assert info.points == 50 and info.indexed_vectors >= 50  # no optimize() called
    query = retriever.embed_query("second note 3 on subject 3")
    hits = store.search(query, limit=50)
    exact = store.search(query, limit=50, exact=True)
    assert [h.id for h in hits] == [h.id for h in exact]
    assert retriever.search("second note 3 on subject 3", k=1)[0].id == hits[0].id
    store.close()


def test_below_the_threshold_points_are_searched_exactly_and_optimize_indexes_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    audio, video = _unit(rng, 300), _unit(rng, 300)
    with OmniStore("few", path=str(tmp_path / "db"), index_threshold=10_000) as store:
        store.upsert(
            [str(i) for i in range(300)],
            [{"audio": a, "video": v} for a, v in zip(audio, video, strict=True)],
        )
        assert store.index_info().indexed_vectors == 0
        assert store.search(audio[7], limit=1)[0].id == "7"
        store.optimize(show_progress_bar=False)
        assert store.index_info().indexed_vectors >= 300
        assert store.search(audio[7], limit=1)[0].id == "7"


def test_index_threshold_is_checked() -> None:
    with pytest.raises(StoreInputError, match="index_threshold"):
        OmniStore("bad", location=":memory:", index_threshold=-1)


_BUILDER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from omni_rag.store import OmniStore

    path, mode, n, dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2 * n, dim)).astype(np.float32)
    items = [{"audio": v[i], "video": v[n + i]} for i in range(n)]
    ids = [str(i) for i in range(n)]
    threshold = 0 if mode == "optimize" else n - 50  # passed by the last 100 only
    store = OmniStore("drill", path=path, index_threshold=threshold, write_batch_size=500)
    store.upsert(ids[:-100], items[:-100])  # below the threshold: written, not indexed
    print("acked", n - 100, flush=True)
    print("building", flush=True)
    if mode == "optimize":
        store.optimize()
    else:
        store.upsert(ids[-100:], items[-100:])  # passes the threshold: the build runs in this call
    print("built", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["optimize", "auto"])
def test_kill_9_during_an_index_build_loses_nothing_and_the_build_restarts(tmp_path: Path, mode: str) -> None:
    path, n, dim = tmp_path / "db", 2500, DIM
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(path), mode, str(n), str(dim)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked = int(proc.stdout.readline().split()[1])
    assert proc.stdout.readline().strip() == "building"
    time.sleep(1.0)
    assert proc.poll() is None, "the build ended before the kill; make it bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2 * n, dim)).astype(np.float32)
    with OmniStore("drill", path=str(path)) as store:  # default threshold: the build restarts at open
        assert store.index_info().indexed_vectors >= acked
        count = store.count()
        assert count in (acked, n)
        present = store.get([str(i) for i in range(count)], with_vectors=False)
        assert all(p is not None for p in present)
        for i in (0, 777, acked - 1):
            assert store.search(v[i], streams=["audio"], limit=1)[0].id == str(i)
            hit = store.search(v[i], limit=1)[0]
            assert hit.id == str(i)


def test_copy_to_an_embedded_store_leaves_it_indexed(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    audio, video = _unit(rng, 120), _unit(rng, 120)
    with OmniStore("src", location=":memory:") as source:
        source.upsert(
            [str(i) for i in range(120)],
            [{"audio": a, "video": v} for a, v in zip(audio, video, strict=True)],
        )
        with OmniStore("dst", path=str(tmp_path / "db"), index_threshold=100) as target:
            assert source.copy_to(target, batch_size=50) == 120
            info = target.index_info()
            assert info.points == 120 and info.indexed_vectors >= 100  # built when 100 was passed
            assert target.search(audio[119], limit=1)[0].id == "119"  # the rest is scanned exactly
