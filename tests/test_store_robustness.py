"""Store semantics on both engines: points lacking a selected stream, search effort after optimize.

(Input rules, groups, kill -9, locking and migration are in ``test_store_engines.py``.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from omni_rag.store import (
    STREAMS,
    OmniStore,
    StoreInputError,
)

DIM = 16
Make = Callable[..., OmniStore]


@pytest.fixture(params=["edge", "qdrant-client"])
def make(request: pytest.FixtureRequest) -> Make:
    def factory(name: str, **kwargs: object) -> OmniStore:
        if request.param == "edge":
            return OmniStore(name, **kwargs)  # type: ignore[arg-type]
        return OmniStore(name, client=QdrantClient(":memory:"), **kwargs)  # type: ignore[arg-type]

    return factory


def _unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ---------------------------------------------------------------- bad batches (issue 13)


# ---------------------------------------------------------------- grouping


# ---------------------------------------------------------------- search effort


def test_exact_and_hnsw_ef_match_brute_force_after_optimize(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    audio, video = _unit(rng, n), _unit(rng, n)
    with OmniStore("effort", path=str(tmp_path / "db"), write_batch_size=1000) as s:
        items = [{"audio": a, "video": v} for a, v in zip(audio, video, strict=True)]
        s.upsert([str(i) for i in range(n)], items)
        s.optimize()
        q = _unit(rng)[0]
        truth = np.argsort(-(0.75 * audio @ q + 0.25 * video @ q))[:10]
        w = {"audio": 3.0, "video": 1.0}
        exact = s.search(q, streams=["audio", "video"], weights=w, limit=10, exact=True)
        assert [int(h.id) for h in exact] == truth.tolist()
        effort = s.search(q, streams=["audio", "video"], weights=w, limit=10, hnsw_ef=512)
        assert len({int(h.id) for h in effort} & set(truth.tolist())) >= 9
        with pytest.raises(StoreInputError, match="hnsw_ef"):
            s.search(q, hnsw_ef=0)


def test_points_lacking_a_selected_stream_score_over_the_streams_they_have(make: Make) -> None:
    rng = np.random.default_rng(6)
    q = _unit(rng)[0]
    s = make("partial")
    both, audio_only, video_only = _unit(rng, 3)
    s.upsert(
        ["both", "a", "v"],
        [{"audio": both, "video": q}, {"audio": audio_only}, {"video": video_only}],
    )
    hits = {h.id: h.score for h in s.search(q, streams=["audio", "video"], weights={"audio": 2, "video": 1})}
    assert hits["both"] == pytest.approx((2 * float(both @ q) + 1.0) / 3, abs=1e-5)
    assert hits["a"] == pytest.approx(float(audio_only @ q), abs=1e-5)
    assert hits["v"] == pytest.approx(float(video_only @ q), abs=1e-5)


# ---------------------------------------------------------------- crash safety and locks

_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from omni_rag.store import OmniStore
    store = OmniStore("drill", path=sys.argv[1], write_batch_size=25)
    rng = np.random.default_rng(0)
    start = int(sys.argv[2])
    for lo in range(start, 100000, 25):
        ids = [f"p{i}" for i in range(lo, lo + 25)]
        v = rng.normal(size=(25, 16)).astype(np.float32)
        store.upsert(ids, [{"audio": x, "video": x} for x in v], [{"source": f"s{lo}"}] * 25)
        print(lo + 24, flush=True)
    """
)


def _run_writer(folder: Path, start: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder), str(start)], stdout=subprocess.PIPE, text=True
    )


# ---------------------------------------------------------------- migration from 0.1


def _write_legacy(folder: Path, n: int) -> list[np.ndarray]:
    """A store as omni-rag 0.1 wrote it: qdrant-client local folder, stream vectors only."""
    client = QdrantClient(path=str(folder))
    client.create_collection(
        "media",
        vectors_config={s: models.VectorParams(size=DIM, distance=models.Distance.COSINE) for s in STREAMS},
    )
    rng = np.random.default_rng(7)
    vecs = [v for v in _unit(rng, n)]
    client.upsert(
        "media",
        [
            models.PointStruct(
                id=i, vector={"audio": v.tolist()}, payload={"id": f"old-{i}", "source": f"s{i % 3}.wav"}
            )
            for i, v in enumerate(vecs)
        ],
    )
    client.close()
    return vecs
