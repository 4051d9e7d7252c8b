"""Store behaviour beyond fusion maths: input rules, groups, durability, locking, migration.

Tests taking ``make`` run on both engines (Qdrant Edge and qdrant-client); the rest are about the
embedded engine's files and processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from omni_rag.cli import main
from omni_rag.cli.errors import ExitCode
from omni_rag.store import (
    STREAMS,
    CollectionNameError,
    LegacyStoreError,
    OmniStore,
    StoreInputError,
    StoreLockedError,
    StoreWriteError,
    planning,
    point_id,
)
from omni_rag.store.engine import FUSED
from omni_rag.store.fusion import fuse, score_matrix
from omni_rag.store.planning import FUSED_HNSW_EF, mean_requests

DIM = 8
Make = Callable[..., OmniStore]


@pytest.fixture(params=["edge", "qdrant-client"])
def make(request: pytest.FixtureRequest) -> Make:
    def factory(name: str, **kwargs: object) -> OmniStore:
        if request.param == "edge":
            return OmniStore(name, **kwargs)  # type: ignore[arg-type]
        return OmniStore(name, client=QdrantClient(":memory:"), **kwargs)  # type: ignore[arg-type]

    return factory


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


# ---------------------------------------------------------------- input rules


def test_duplicate_ids_in_one_upsert_are_refused_naming_both(make: Make) -> None:
    s = make("dups", dim=DIM)
    v = {"text": np.ones(DIM, dtype=np.float32)}
    with pytest.raises(StoreInputError, match=r"item 2: id 'a' repeats item 0's id") as err:
        s.upsert(["a", "b", "a"], [v, v, v])
    assert err.value.index == 2
    assert s.count() == 0  # nothing of the batch was written


def test_complex_vectors_and_queries_are_refused(make: Make) -> None:
    s = make("cplx", dim=DIM)
    with pytest.raises(StoreInputError, match=r"item 0, stream 'audio'.*complex"):
        s.upsert(["a"], [{"audio": np.ones(DIM) + 1j}])
    s.upsert(["b"], [{"audio": np.ones(DIM, dtype=np.float32)}])
    with pytest.raises(StoreInputError, match="complex"):
        s.search(np.ones(DIM) * (1 + 1j))
    assert s.count() == 1


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "-x", "a\\b", "x" * 256, "new\nline"])
def test_invalid_collection_names_fail_at_construction(make: Make, name: str) -> None:
    with pytest.raises(CollectionNameError, match="invalid collection name"):
        make(name)


def test_search_arguments_are_checked(make: Make) -> None:
    s = make("args", dim=DIM)
    s.upsert(["a"], [{"text": np.ones(DIM, dtype=np.float32)}])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(StoreInputError, match="limit"):
            s.search(np.ones(DIM), limit=bad)  # type: ignore[arg-type]
    with pytest.raises(StoreInputError, match="hnsw_ef"):
        s.search(np.ones(DIM), hnsw_ef=0)
    assert [h.id for h in s.search(np.ones(DIM), exact=True, hnsw_ef=256)] == ["a"]


def test_write_failure_raises_store_write_error(make: Make) -> None:
    s = make("fail", dim=DIM)
    s._engine.drop()  # the collection vanishes under the store (another process, a full disk...)
    with pytest.raises(StoreWriteError, match="fail"):
        s.upsert(["a"], [{"text": np.ones(DIM, dtype=np.float32)}])


# ---------------------------------------------------------------- groups


def test_text_documents_group_by_their_own_id(make: Make) -> None:
    rng = np.random.default_rng(0)
    s = make("texts")
    ids = [f"t{i}" for i in range(6)]
    s.upsert(ids, [{"text": _unit(rng)} for _ in ids])  # no source: plain text documents
    s.upsert(["v"], [{"video": _unit(rng)}], [{"source": "a.mp4"}])
    for fusion in ("mean", "max", "rrf", "dbsf"):
        groups = s.search_groups(_unit(rng), limit=10, group_size=2, fusion=fusion)  # type: ignore[arg-type]
        assert sorted(str(g.key) for g in groups) == sorted([*ids, "a.mp4"])
        assert all(len(g.hits) == 1 for g in groups)


@pytest.mark.parametrize("fusion", ["mean", "max", "rrf", "dbsf"])
def test_a_source_with_many_segments_cannot_crowd_out_others(make: Make, fusion: str) -> None:
    rng = np.random.default_rng(1)
    q = _unit(rng)
    s = make("crowd")
    near = [(q + 0.05 * _unit(rng)) for _ in range(300)]  # 300 segments of one video, all close
    s.upsert(
        [f"long#{k}" for k in range(300)],
        [{"audio": v, "video": v} for v in near],
        [{"source": "long.mp4", "segment_index": k} for k in range(300)],
    )
    others = [f"clip{i}.mp4" for i in range(5)]
    s.upsert(
        others, [{"audio": _unit(rng), "video": _unit(rng)} for _ in others], [{"source": o} for o in others]
    )
    groups = s.search_groups(q, limit=4, group_size=3, fusion=fusion)  # type: ignore[arg-type]
    assert len(groups) == 4
    assert groups[0].key == "long.mp4" and len(groups[0].hits) == 3
    assert {g.key for g in groups[1:]} <= set(others)


# ---------------------------------------------------------------- mean at index speed


def test_mean_on_hnsw_matches_brute_force_after_optimize(tmp_path: Path) -> None:
    """Past the full-scan threshold the fused vectors are searched through HNSW, then rescored."""
    rng = np.random.default_rng(2)
    dim, n = 256, 6000  # 6000 x (2 x 256 + 512) floats is past the 10 MB full-scan threshold
    centres = rng.normal(size=(n // 10, dim)).astype(np.float32)  # items come in clusters of ~10
    base = centres[rng.integers(0, n // 10, n)] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32)
    audio = base + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    video = base + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"p{i}" for i in range(n)]
    with OmniStore("hnsw", path=str(tmp_path / "db")) as s:
        s.upsert(ids, [{"audio": a, "video": v} for a, v in zip(audio, video, strict=True)])
        s.optimize()
        vectors = [{"audio": a, "video": v} for a, v in zip(audio, video, strict=True)]
        overlaps = []
        for i in range(10):
            q = base[i * 7] + 0.3 * rng.normal(size=dim).astype(np.float32)
            weights = {"audio": 1.0 + i % 3, "video": 1.0}
            truth = fuse(
                score_matrix(q, vectors, ("audio", "video")), np.array([weights["audio"], 1.0]), "mean"
            )
            top = [ids[j] for j in np.argsort(-truth)[:10]]
            hits = s.search(q, streams=["audio", "video"], weights=weights, limit=10)
            overlaps.append(len({h.id for h in hits} & set(top)) / 10)
            for h in hits:  # every returned score is the exact weighted mean
                assert h.score == pytest.approx(truth[ids.index(h.id)], abs=1e-5)
            exact = s.search(q, streams=["audio", "video"], weights=weights, limit=10, exact=True)
            assert [h.id for h in exact] == top
        assert np.mean(overlaps) >= 0.95


def _mean_plan(store: OmniStore, streams: list[str]) -> list[tuple[str, list[str] | None, int | None]]:
    """(vector searched, stream_set values it is filtered to, effort) of each index query of a mean search."""
    plan = store._plan(_unit(np.random.default_rng(0)), streams, "mean", None, 10, None, None, None, False)
    assert plan is not None
    out = []
    for r in mean_requests(plan, 40):
        sets = None
        if r.filter is not None:
            (condition,) = r.filter.must  # type: ignore[misc]
            assert condition.key == "stream_set"
            sets = sorted(condition.match.any)
        out.append((r.using, sets, r.hnsw_ef))
    return out


def test_mean_queries_only_the_stream_combinations_points_have(make: Make) -> None:
    """A combination no point has costs no query (on HNSW it walked the whole graph for nothing)."""
    rng = np.random.default_rng(4)
    s = make("combos")
    s.upsert([f"av{i}" for i in range(20)], [{"audio": _unit(rng), "video": _unit(rng)} for _ in range(20)])
    assert _mean_plan(s, ["audio", "video"]) == [(FUSED, None, FUSED_HNSW_EF)]
    assert _mean_plan(s, ["audio"]) == [("audio", None, None)]
    s.upsert(["a", "ta"], [{"audio": _unit(rng)}, {"text": _unit(rng), "audio": _unit(rng)}])
    assert _mean_plan(s, ["audio", "video"]) == [
        ("audio", ["audio", "text+audio"], None),
        (FUSED, ["audio+video"], FUSED_HNSW_EF),
    ]
    assert s.get(["ta"])[0].payload["modalities"] == ["text", "audio"]  # type: ignore[union-attr]
    assert "stream_set" not in s.get(["ta"])[0].payload  # type: ignore[union-attr]
    s.delete(["a", "ta"])
    assert _mean_plan(s, ["audio", "video"]) == [(FUSED, None, FUSED_HNSW_EF)]
    plan = s._plan(_unit(rng), ["audio", "video"], "mean", None, 10, None, None, 64, False)
    assert plan is not None and [r.hnsw_ef for r in mean_requests(plan, 40)] == [64]


def test_fused_effort_grows_with_the_audio_video_points_it_searches(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the points the fused query is filtered to count: audio-only points do not raise its effort."""
    monkeypatch.setattr(planning, "LARGE_FUSED_POINTS", 12)
    rng = np.random.default_rng(5)
    s = make("effort")
    s.upsert([f"av{i}" for i in range(12)], [{"audio": _unit(rng), "video": _unit(rng)} for _ in range(12)])
    s.upsert([f"a{i}" for i in range(5)], [{"audio": _unit(rng)} for _ in range(5)])
    assert dict(s._engine.stream_sets()) == {"audio": 5, "audio+video": 12}
    assert _mean_plan(s, ["audio", "video"])[-1] == (FUSED, ["audio+video"], FUSED_HNSW_EF)
    s.upsert(["av12"], [{"audio": _unit(rng), "video": _unit(rng)}])
    assert dict(s._engine.stream_sets()) == {"audio": 5, "audio+video": 13}
    assert _mean_plan(s, ["audio", "video"])[-1] == (FUSED, ["audio+video"], 2 * FUSED_HNSW_EF)
    plan = s._plan(_unit(rng), ["audio", "video"], "mean", None, 10, None, None, 64, False)
    assert plan is not None and [r.hnsw_ef for r in mean_requests(plan, 40)] == [64, 64]


# ---------------------------------------------------------------- durability and locking

_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from omni_rag.store import OmniStore
    path, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(stop, 8)).astype(np.float32)
    with OmniStore("drill", path=path) as store:
        for i in range(start, stop, 10):
            ids = [f"p{j}" for j in range(i, min(i + 10, stop))]
            store.upsert(ids, [{"audio": vectors[j], "video": -vectors[j]} for j in range(i, i + len(ids))])
            print("acked", ids[-1], flush=True)
    """
)


def _writer(path: Path, start: int, stop: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(start), str(stop)], stdout=subprocess.PIPE, text=True
    )


def test_kill_9_mid_write_loses_nothing_acknowledged_and_rerun_completes(tmp_path: Path) -> None:
    path = tmp_path / "store"
    proc = _writer(path, 0, 100_000)
    acked = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acked = int(line.split()[1][1:])
        if acked >= 2000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with OmniStore("drill", path=str(path)) as store:
        got = store.get([f"p{j}" for j in range(acked + 1)])
        assert all(p is not None for p in got), "an acknowledged point was lost"
        before = store.count()
        assert before >= acked + 1
    rerun = _writer(path, 0, 3000)
    assert rerun.wait(timeout=300) == 0
    with OmniStore("drill", path=str(path)) as store:
        assert store.count() == max(before, 3000)  # replaced, never duplicated
        ids = {h.id for h in store.search(np.ones(8), limit=50, exact=True)}
        assert len(ids) == 50


def test_second_process_reads_through_the_holder_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with OmniStore("busy", path=str(path)) as store:
        store.upsert(["a"], [{"text": np.ones(4, dtype=np.float32)}])
        code = (
            "import sys\nimport numpy as np\nfrom omni_rag.store import OmniStore, StoreLockedError\n"
            f"store = OmniStore('busy', path={str(path)!r})\nprint(store.count())\n"
            "try:\n    store.upsert(['b'], [{'text': np.ones(4)}])\n"
            "except StoreLockedError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3, out.stderr
        assert out.stdout.startswith("1\n")
        assert "being written by another process" in out.stdout and "Qdrant server" in out.stdout
        cli = subprocess.run(
            [sys.executable, "-m", "omni_rag.cli", "info", "-c", "busy", "--store", str(path)],
            capture_output=True,
            text=True,
        )
        assert cli.returncode == ExitCode.OK, cli.stderr
    with OmniStore("busy", path=str(path)) as again:  # released on close
        assert again.count() == 1
        with OmniStore("busy", path=str(path)) as reader:  # a second open in one process reads too
            assert reader.count() == 1
            with pytest.raises(StoreLockedError):
                reader.delete(["a"])


# ---------------------------------------------------------------- migration from 0.1


def _write_v01_store(path: Path, n: int) -> tuple[list[str], np.ndarray]:
    """A store as omni-rag 0.1 wrote it: qdrant-client local mode, streams only, info in metadata."""
    rng = np.random.default_rng(3)
    client = QdrantClient(path=str(path))
    params = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    client.create_collection(
        "old",
        vectors_config=dict.fromkeys(STREAMS, params),
        metadata={"omni_rag": {"model_id": "m", "dim": DIM}},
    )
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    ids = [f"item{i}#{i % 3}" for i in range(n)]
    client.upsert(
        "old",
        points=[
            models.PointStruct(
                id=point_id(ids[i]),
                vector={"audio": vectors[i].tolist(), "video": (-vectors[i]).tolist()}
                if i % 2
                else {"text": vectors[i].tolist()},
                payload={
                    "id": ids[i],
                    "source": None if i % 2 == 0 else f"v{i}.mp4",
                    "modalities": ["audio", "video"] if i % 2 else ["text"],
                    "start_s": None,
                    "end_s": None,
                    "segment_index": None,
                    "metadata": {"n": i},
                },
            )
            for i in range(n)
        ],
    )
    client.close()
    return ids, vectors


def test_v01_store_is_refused_with_the_command_then_migrated(tmp_path: Path, capsys) -> None:
    path = tmp_path / "store"
    ids, vectors = _write_v01_store(path, 300)
    with pytest.raises(LegacyStoreError, match=f"omni-rag migrate --store {path}"):
        OmniStore("old", path=str(path))
    assert main(["info", "-c", "old", "--store", str(path)]) == ExitCode.STORE_INVALID
    assert main(["migrate", "--store", str(path), "-q"]) == 0
    assert "migrated collection 'old': 300 points" in capsys.readouterr().out
    assert (path / "legacy-0.1" / "collection" / "old").is_dir()  # old files kept, moved aside
    with OmniStore("old", path=str(path)) as store:
        assert store.count() == 300
        assert store.get_info() == {"model_id": "m", "dim": DIM}
        got = store.get([ids[1], ids[2]])
        assert got[0] is not None and got[1] is not None
        assert got[0].payload["source"] == "v1.mp4" and got[0].payload["metadata"] == {"n": 1}
        np.testing.assert_allclose(got[1].vectors["text"], vectors[2] / np.linalg.norm(vectors[2]), atol=1e-6)
        hits = store.search(vectors[5], streams=["audio"], limit=1)
        assert hits[0].id == ids[5]
    assert main(["migrate", "--store", str(path)]) == 0
    assert "nothing to migrate" in capsys.readouterr().out


def test_cli_refuses_a_bad_collection_name_before_loading_the_model(tmp_path: Path, capsys) -> None:
    media = tmp_path / "a.txt"
    media.write_text("hello")
    for name in ("a/b", ""):
        start = time.perf_counter()
        code = main(
            ["index", str(media), "-c", name, "--store", str(tmp_path / "s"), "--model", "/no/such/model"]
        )
        assert code == ExitCode.STORE_INVALID, capsys.readouterr().err
        assert "invalid collection name" in capsys.readouterr().err
        assert time.perf_counter() - start < 10
    assert not json.dumps(os.listdir(tmp_path / "s")).count("edge/a")


def test_copy_to_another_engine_keeps_points_payloads_and_info(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ids = [f"x{i}" for i in range(600)]
    vectors = [
        {"audio": _unit(rng), "video": _unit(rng)} if i % 3 else {"text": _unit(rng)} for i in range(600)
    ]
    payloads = [{"source": f"s{i % 7}.mp4", "metadata": {"i": i}} for i in range(600)]
    with OmniStore("src", path=str(tmp_path / "a")) as src:
        src.upsert(ids, vectors, payloads)
        src.set_info({"model_id": "m"})
        dst = OmniStore("dst", client=QdrantClient(":memory:"))
        assert src.copy_to(dst, batch_size=128) == 600
        assert src.copy_to(dst) == 600 and dst.count() == 600  # a re-run replaces
        assert dst.get_info() == {"model_id": "m"}
        q = _unit(rng)
        for fusion in ("mean", "max", "rrf", "dbsf"):
            a = src.search(q, fusion=fusion, limit=10, exact=True)  # type: ignore[arg-type]
            b = dst.search(q, fusion=fusion, limit=10)  # type: ignore[arg-type]

            # rank fusion ties often: equal score sequences, and the same points above the last tie
            assert [round(h.score, 6) for h in a] == [round(h.score, 6) for h in b], fusion
            last = round(a[-1].score, 6)
            above_a = {(h.id, str(h.payload)) for h in a if round(h.score, 6) > last}
            assert above_a == {(h.id, str(h.payload)) for h in b if round(h.score, 6) > last}, fusion
