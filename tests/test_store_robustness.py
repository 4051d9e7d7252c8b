"""Store robustness on both engines: bad batches, grouping, search effort, kill -9, locks, migration.

No mocks: Qdrant Edge in temporary folders, qdrant-client's ``:memory:`` mode standing in for a
server, real subprocesses for the crash and lock drills.
"""

from __future__ import annotations

import os
import signal
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
    LegacyStoreError,
    OmniStore,
    StoreError,
    StoreInputError,
    StoreLockedError,
    StoreWriteError,
    migrate_store,
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


def test_duplicate_ids_in_one_batch_are_rejected_naming_both(make: Make) -> None:
    s = make("dups", dim=4)
    v = {"text": np.ones(4, dtype=np.float32)}
    with pytest.raises(StoreInputError, match=r"item 3: id 'b' repeats item 1's id"):
        s.upsert(["a", "b", "c", "b"], [v, v, v, v])
    assert s.count() == 0


def test_complex_and_non_finite_vectors_name_index_and_stream(make: Make) -> None:
    s = make("cplx", dim=4)
    good = {"text": np.ones(4, dtype=np.float32)}
    with pytest.raises(StoreInputError, match=r"item 1, stream 'audio'.*complex") as err:
        s.upsert(["a", "b"], [good, {"text": np.ones(4), "audio": np.ones(4, dtype=np.complex64)}])
    assert err.value.index == 1 and err.value.stream == "audio"
    with pytest.raises(StoreInputError, match=r"item 0, stream 'video'.*NaN"):
        s.upsert(["a"], [{"video": np.array([1.0, np.nan, 0.0, 0.0])}])
    assert s.count() == 0


@pytest.mark.parametrize("name", ["", "a/b", "..", "-x", "a b", "x" * 300, "a\\b"])
def test_invalid_collection_name_fails_at_construction(name: str, tmp_path: Path) -> None:
    with pytest.raises(StoreInputError, match="invalid collection name"):
        OmniStore(name, path=str(tmp_path / "db"))
    assert not (tmp_path / "db").exists()  # nothing was created before the check


def test_write_failure_is_a_store_write_error() -> None:
    client = QdrantClient(":memory:")
    s = OmniStore("gone", client=client, dim=4)
    client.delete_collection("gone")  # the server lost the collection behind the store's back
    with pytest.raises(StoreWriteError, match="gone"):
        s.upsert(["a"], [{"text": np.ones(4, dtype=np.float32)}])
    assert issubclass(StoreWriteError, StoreError)


# ---------------------------------------------------------------- grouping


def test_source_with_many_segments_cannot_crowd_other_sources_out(make: Make) -> None:
    rng = np.random.default_rng(3)
    q = _unit(rng)[0]
    # 300 segments of one source all closer to the query than any other source's best
    near = q + 0.3 * _unit(rng, 300)
    far = q + 2.0 * _unit(rng, 5)
    ids = [f"big-{i}" for i in range(300)] + [f"other-{i}" for i in range(5)]
    vectors = [{"audio": v, "video": v} for v in np.vstack([near, far])]
    payloads = [{"source": "big.mp4"}] * 300 + [{"source": f"o{i}.mp4"} for i in range(5)]
    s = make("crowd", write_batch_size=128)
    s.upsert(ids, vectors, payloads)
    for fusion in ("mean", "max", "rrf", "dbsf"):
        groups = s.search_groups(q, limit=4, group_size=2, fusion=fusion, oversampling=1.0)  # type: ignore[arg-type]
        keys = [g.key for g in groups]
        assert len(keys) == 4 and keys[0] == "big.mp4", (fusion, keys)
        assert set(keys[1:]) <= {f"o{i}.mp4" for i in range(5)}


def test_points_without_source_group_by_their_own_id(make: Make) -> None:
    rng = np.random.default_rng(4)
    q = _unit(rng)[0]
    vecs = q + 0.5 * _unit(rng, 4)
    s = make("textdocs")
    s.upsert(
        ["t1", "t2", "v1", "v2"],
        [{"text": vecs[0]}, {"text": vecs[1]}, {"text": vecs[2]}, {"text": vecs[3]}],
        [{}, {"source": None}, {"source": "v.mp4"}, {"source": "v.mp4"}],
    )
    groups = s.search_groups(q, streams=["text"], limit=10, group_size=3)
    by_key = {g.key: [h.id for h in g.hits] for g in groups}
    assert by_key["t1"] == ["t1"] and by_key["t2"] == ["t2"]
    assert sorted(by_key["v.mp4"]) == ["v1", "v2"]
    assert len(groups) == 3


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


def test_kill_9_mid_write_loses_nothing_acknowledged_and_rerun_adds_no_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    proc = _run_writer(folder, 0)
    assert proc.stdout is not None
    acknowledged = -1
    while acknowledged < 600:
        line = proc.stdout.readline()
        assert line, "writer died before the kill"
        acknowledged = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with OmniStore("drill", path=str(folder)) as s:
        got = s.get([f"p{i}" for i in range(acknowledged + 1)])
        assert all(p is not None for p in got), "an acknowledged point was lost"
        kept = s.count()
        assert kept >= acknowledged + 1
        # the re-run starts over at the first batch: same ids, so nothing is duplicated
        v = np.ones((kept, 16), dtype=np.float32)
        s.upsert([f"p{i}" for i in range(kept)], [{"audio": x} for x in v], [{"source": "again"}] * kept)
        assert s.count() == kept
        assert s.count({"source": "again"}) == kept


def test_second_process_gets_in_use_error(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    code = textwrap.dedent(
        """
        import sys
        from omni_rag.store import OmniStore, StoreLockedError
        try:
            OmniStore("locked", path=sys.argv[1])
        except StoreLockedError as error:
            print("LOCKED", error)
            sys.exit(5)
        """
    )
    with OmniStore("locked", path=str(folder), dim=4):
        res = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True)
        assert res.returncode == 5, res.stderr
        assert "in use by another process" in res.stdout
    res = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr  # released on close
    with OmniStore("locked", path=str(folder)) as s:
        with pytest.raises(StoreLockedError):
            OmniStore("locked", path=str(folder))
        assert s.dim == 4


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


def test_legacy_store_gives_migrate_message_then_migrates(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    vecs = _write_legacy(folder, 30)
    with pytest.raises(LegacyStoreError, match=r"omni-rag migrate --store"):
        OmniStore("media", path=str(folder))
    report = migrate_store(folder)
    assert report.copied == {"media": 30}
    assert report.backup is not None and (report.backup / "collection" / "media").is_dir()
    with OmniStore("media", path=str(folder)) as s:
        assert s.count() == 30
        hits = s.search(vecs[4], streams=["audio"], limit=1)
        assert hits[0].id == "old-4" and hits[0].payload["source"] == "s1.wav"
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_copy_to_a_server_store_keeps_points_info_and_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    vecs = _unit(rng, 40)
    with OmniStore("move", path=str(tmp_path / "db")) as src:
        src.upsert(
            [f"m{i}" for i in range(40)],
            [{"audio": v} if i % 2 else {"audio": v, "video": v[::-1].copy()} for i, v in enumerate(vecs)],
            [{"source": f"s{i % 4}.mp4", "metadata": {"n": i}} for i in range(40)],
        )
        src.set_info({"model": "m", "dim": DIM})
        dst = OmniStore("move", client=QdrantClient(":memory:"))
        assert src.copy_to(dst, batch_size=16) == 40
        assert src.copy_to(dst, batch_size=16) == 40  # a re-run replaces, never duplicates
        assert dst.count() == 40 and dst.get_info() == {"model": "m", "dim": DIM}
        q = _unit(rng)[0]
        for fusion in ("mean", "max"):
            a = src.search(q, fusion=fusion, limit=10)  # type: ignore[arg-type]
            b = dst.search(q, fusion=fusion, limit=10)  # type: ignore[arg-type]
            assert [(h.id, h.payload) for h in a] == [(h.id, h.payload) for h in b]
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
