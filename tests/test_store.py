"""Tests of omni_rag.store on both engines (no mocks).

Congruence, as qdrant-client tests its local and remote modes: every test that takes ``make`` or
``store`` runs on Qdrant Edge (the embedded default) and on qdrant-client (its ``:memory:`` mode
standing in for a server), and fusion is compared with numpy brute force on both.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from omni_rag.errors import OmniError
from omni_rag.store import (
    STREAMS,
    CollectionMismatchError,
    DimensionMismatchError,
    OmniStore,
    StoreInputError,
    UnknownStreamError,
    point_id,
    to_filter,
)

DIM = 16
N = 240
SOURCES = ["a.mp4", "b.mp4", "c.wav", "d.png", "e.txt", "f.mp4"]


def _corpus(seed: int = 0) -> tuple[list[str], list[dict[str, np.ndarray]], list[dict]]:
    """Random items, each with a random non-empty subset of streams."""
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    vectors: list[dict[str, np.ndarray]] = []
    payloads: list[dict] = []
    for i in range(N):
        mask = rng.random(len(STREAMS)) < 0.6
        if not mask.any():
            mask[i % len(STREAMS)] = True
        vectors.append(
            {
                s: rng.normal(size=DIM).astype(np.float32)
                for s, keep in zip(STREAMS, mask, strict=True)
                if keep
            }
        )
        ids.append(f"doc-{i}")
        payloads.append(
            {
                "source": SOURCES[i % len(SOURCES)],
                "segment_index": i // len(SOURCES),
                "start_s": float(i),
                "end_s": float(i + 1),
                "metadata": {"lang": "en" if i % 3 else "fr", "n": i},
            }
        )
    return ids, vectors, payloads


def _brute(
    query: np.ndarray,
    ids: Sequence[str],
    vectors: Sequence[Mapping[str, np.ndarray]],
    streams: Sequence[str] = STREAMS,
    weights: Mapping[str, float] | None = None,
    mode: str = "mean",
    keep: Sequence[bool] | None = None,
) -> list[tuple[str, float]]:
    """Independent reference: fused cosine over the streams each point has, best first."""
    q = query / np.linalg.norm(query)
    out = []
    for i, (item_id, item) in enumerate(zip(ids, vectors, strict=True)):
        if keep is not None and not keep[i]:
            continue
        parts = [
            ((weights or {}).get(s, 1.0), float(item[s] @ q / np.linalg.norm(item[s])))
            for s in streams
            if s in item and (weights or {}).get(s, 1.0) > 0
        ]
        if not parts:
            continue
        if mode == "mean":
            score = sum(w * c for w, c in parts) / sum(w for w, _ in parts)
        else:
            score = max(w * c for w, c in parts)
        out.append((item_id, score))
    out.sort(key=lambda t: (-t[1], t[0]))
    return out


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[dict[str, np.ndarray]], list[dict]]:
    return _corpus()


ENGINES = ["edge", "qdrant-client"]
Make = Callable[..., OmniStore]


def _maker(engine: str) -> Make:
    """A store factory on one engine: Edge in a temporary folder, or a fresh qdrant-client."""

    def make(name: str, **kwargs: object) -> OmniStore:
        if engine == "edge":
            return OmniStore(name, **kwargs)  # type: ignore[arg-type]
        return OmniStore(name, client=QdrantClient(":memory:"), **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(engine: str) -> Make:
    return _maker(engine)


@pytest.fixture(scope="module")
def store(
    engine: str, corpus: tuple[list[str], list[dict[str, np.ndarray]], list[dict]]
) -> Iterator[OmniStore]:
    ids, vectors, payloads = corpus
    s = _maker(engine)("docs", write_batch_size=50)
    s.upsert(ids, vectors, payloads)
    assert s.engine == engine
    yield s
    s.close()


def _query(seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).normal(size=DIM).astype(np.float32)


# ---------------------------------------------------------------- mean / max vs brute force


@pytest.mark.parametrize(
    ("streams", "weights"),
    [
        (None, None),
        (None, {"text": 1.0, "image": 3.0, "audio": 2.0, "video": 0.5}),
        (["audio"], None),
        (["video"], None),
        (["audio", "video"], {"audio": 2.0, "video": 1.0}),
        (["text", "image"], {"text": 0.0, "image": 1.0}),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_equals_brute_force(store: OmniStore, corpus, streams, weights, seed: int) -> None:
    ids, vectors, _ = corpus
    q = _query(seed)
    # oversampling large enough for every point to be a candidate: results must be exact
    hits = store.search(q, streams=streams, weights=weights, limit=10, oversampling=N / 10)
    expected = _brute(q, ids, vectors, streams or STREAMS, weights)[:10]
    assert [h.id for h in hits] == [e[0] for e in expected]
    np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-5)


def test_mean_default_oversampling_scores_are_exact(store: OmniStore, corpus) -> None:
    ids, vectors, _ = corpus
    truth = dict(_brute(_query(5), ids, vectors))
    hits = store.search(_query(5), limit=10)
    assert len(hits) == 10
    for hit in hits:
        assert hit.score == pytest.approx(truth[hit.id], abs=1e-5)
        item = vectors[ids.index(hit.id)]
        assert set(hit.stream_scores) == set(item)
        q = _query(5) / np.linalg.norm(_query(5))
        for s, score in hit.stream_scores.items():
            assert score == pytest.approx(float(item[s] @ q / np.linalg.norm(item[s])), abs=1e-5)
    # top-10 of 240 points is found with the default 4x oversampling on this data
    assert [h.id for h in hits] == [i for i, _ in sorted(truth.items(), key=lambda t: (-t[1], t[0]))[:10]]


@pytest.mark.parametrize("weights", [None, {"audio": 2.0, "text": 0.5}])
def test_max_equals_brute_force_with_default_oversampling(store: OmniStore, corpus, weights) -> None:
    ids, vectors, _ = corpus
    for seed in range(3):
        hits = store.search(_query(seed), fusion="max", weights=weights, limit=8)
        expected = _brute(_query(seed), ids, vectors, weights=weights, mode="max")[:8]
        assert [h.id for h in hits] == [e[0] for e in expected]
        np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-5)


# ---------------------------------------------------------------- every mode


@pytest.mark.parametrize("fusion", ["mean", "max", "rrf", "dbsf"])
def test_point_equal_to_query_ranks_first(make: Make, corpus, fusion: str) -> None:
    ids, vectors, payloads = corpus
    q = _query(7)
    with make("eq") as s:
        s.upsert(ids, vectors, payloads)
        s.upsert(["needle"], [dict.fromkeys(STREAMS, q * 3.0)])
        hits = s.search(q, fusion=fusion, limit=5)  # type: ignore[arg-type]
        assert hits[0].id == "needle"
        assert hits[0].stream_scores == pytest.approx(dict.fromkeys(STREAMS, 1.0), abs=1e-5)
        assert len({h.id for h in hits}) == len(hits) == 5
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def _native_reference(
    query: np.ndarray,
    ids: Sequence[str],
    vectors: Sequence[Mapping[str, np.ndarray]],
    fusion: str,
    per_stream: int,
) -> dict[str, float]:
    """Independent RRF (k=2) / DBSF (mean ± 3σ) over per-stream top lists, as Qdrant documents them."""
    q = query / np.linalg.norm(query)
    fused: dict[str, float] = {}
    for s in STREAMS:
        ranked = sorted(
            (
                (float(v[s] @ q / np.linalg.norm(v[s])), i)
                for i, v in zip(ids, vectors, strict=True)
                if s in v
            ),
            reverse=True,
        )[:per_stream]
        scores = np.array([c for c, _ in ranked])
        low, high = scores.mean() - 3 * scores.std(ddof=1), scores.mean() + 3 * scores.std(ddof=1)
        for pos, (cos, item_id) in enumerate(ranked):
            part = 1.0 / (pos + 2) if fusion == "rrf" else (cos - low) / (high - low)
            fused[item_id] = fused.get(item_id, 0.0) + part
    return fused


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_native_fusion_equals_reference(store: OmniStore, corpus, fusion: str) -> None:
    ids, vectors, _ = corpus
    q = _query(3)
    hits = store.search(q, fusion=fusion, limit=10, oversampling=4)  # type: ignore[arg-type]
    reference = _native_reference(q, ids, vectors, fusion, per_stream=40)
    assert len({h.id for h in hits}) == 10
    # RRF scores tie often, so compare scores per id and the score sequence, not the tie order
    assert [h.score for h in hits] == pytest.approx(sorted(reference.values(), reverse=True)[:10], abs=1e-5)
    for hit in hits:
        assert hit.score == pytest.approx(reference[hit.id], abs=1e-5)
    qn = q / np.linalg.norm(q)
    for hit in hits:
        item = vectors[ids.index(hit.id)]
        assert set(hit.stream_scores) == set(item)
        for s, score in hit.stream_scores.items():
            assert score == pytest.approx(float(item[s] @ qn / np.linalg.norm(item[s])), abs=1e-5)


def test_weighted_rrf_follows_weights(store: OmniStore, corpus) -> None:
    ids, vectors, _ = corpus
    q = _query(4)
    hits = store.search(
        q, fusion="rrf", weights={"audio": 1.0, "text": 0.0, "image": 0.0, "video": 0.0}, limit=5
    )
    assert [h.id for h in hits] == [i for i, _ in _brute(q, ids, vectors, streams=["audio"])[:5]]


def test_single_stream_is_that_stream_only(store: OmniStore, corpus) -> None:
    ids, vectors, _ = corpus
    hits = store.search(_query(0), streams=["audio"], limit=20, fusion="max")
    assert all("audio" in vectors[ids.index(h.id)] for h in hits)
    assert all(set(h.stream_scores) == {"audio"} for h in hits)


# ---------------------------------------------------------------- writes and reads


def test_reupsert_replaces_and_keeps_count(make: Make, corpus) -> None:
    ids, vectors, payloads = corpus
    s = make("re", write_batch_size=7)
    s.upsert(ids, vectors, payloads)
    assert s.count() == N
    new = {"audio": np.ones(DIM, dtype=np.float32)}
    s.upsert(ids[:10], [new] * 10, [{"source": "new.wav"}] * 10)
    assert s.count() == N
    got = s.get([ids[0]])[0]
    assert got is not None
    assert got.payload["source"] == "new.wav"
    assert got.payload["modalities"] == ["audio"]
    assert set(got.vectors) == {"audio"}


def test_get_returns_payload_vectors_and_none(store: OmniStore, corpus) -> None:
    ids, vectors, payloads = corpus
    got = store.get([ids[3], "missing", ids[1]])
    assert got[1] is None
    first, last = got[0], got[2]
    assert first is not None and last is not None
    assert first.id == ids[3] and last.id == ids[1]
    assert first.payload == {
        "id": ids[3],
        "source": payloads[3]["source"],
        "modalities": [s for s in STREAMS if s in vectors[3]],
        "start_s": 3.0,
        "end_s": 4.0,
        "segment_index": 0,
        "metadata": {"lang": "fr", "n": 3},
    }
    for s, v in vectors[3].items():
        np.testing.assert_allclose(first.vectors[s], v / np.linalg.norm(v), atol=1e-6)


def test_delete(make: Make, corpus) -> None:
    ids, vectors, payloads = corpus
    s = make("del")
    s.upsert(ids, vectors, payloads)
    s.delete([ids[0], ids[1], "never-there"])
    assert s.count() == N - 2
    assert s.get([ids[0], ids[2]])[0] is None
    assert all(h.id not in {ids[0], ids[1]} for h in s.search(vectors[0][next(iter(vectors[0]))], limit=50))


def test_point_ids_are_deterministic_uuids() -> None:
    assert point_id("a") == point_id("a") != point_id("b")
    assert len(point_id("a")) == 36


# ---------------------------------------------------------------- filters and groups


def test_filter_by_dict_matches_brute_force(store: OmniStore, corpus) -> None:
    ids, vectors, payloads = corpus
    q = _query(2)
    hits = store.search(q, filter={"source": "a.mp4", "metadata.lang": "en"}, limit=5, oversampling=20)
    keep = [p["source"] == "a.mp4" and p["metadata"]["lang"] == "en" for p in payloads]
    assert [h.id for h in hits] == [i for i, _ in _brute(q, ids, vectors, keep=keep)[:5]]
    assert all(h.payload["source"] == "a.mp4" for h in hits)


def test_filter_by_modalities_and_qdrant_filter(store: OmniStore) -> None:
    hits = store.search(_query(1), filter={"modalities": "video"}, limit=30)
    assert hits and all("video" in h.payload["modalities"] for h in hits)
    flt = models.Filter(
        must=[models.FieldCondition(key="source", match=models.MatchAny(any=["c.wav", "d.png"]))]
    )
    hits = store.search(_query(1), filter=flt, fusion="rrf", limit=30)
    assert hits and {h.payload["source"] for h in hits} <= {"c.wav", "d.png"}


def test_to_filter_translation() -> None:
    flt = to_filter({"source": "x", "modalities": ["audio", "video"], "start_s": None, "metadata.score": 0.5})
    assert flt is not None and isinstance(flt.must, list)
    kinds = [type(c).__name__ for c in flt.must]
    assert kinds == ["FieldCondition", "FieldCondition", "IsNullCondition", "FieldCondition"]
    with pytest.raises(StoreInputError):
        to_filter({"source": {"nested": 1}})


@pytest.mark.parametrize("fusion", ["mean", "max", "rrf", "dbsf"])
def test_search_groups_one_group_per_source(store: OmniStore, corpus, fusion: str) -> None:
    ids, vectors, payloads = corpus
    q = _query(6)
    groups = store.search_groups(q, group_size=2, limit=4, fusion=fusion)  # type: ignore[arg-type]
    assert len(groups) == 4
    assert len({g.key for g in groups}) == 4
    assert [g.score for g in groups] == sorted((g.score for g in groups), reverse=True)
    for g in groups:
        assert 1 <= len(g.hits) <= 2
        assert all(h.payload["source"] == g.key for h in g.hits)
    if fusion == "mean":
        ranked = _brute(q, ids, vectors)
        best: dict[str, list[str]] = {}
        for item_id, _ in ranked:
            best.setdefault(payloads[ids.index(item_id)]["source"], []).append(item_id)
        assert [g.key for g in groups] == list(best)[:4]
        assert [[h.id for h in g.hits] for g in groups] == [best[k][:2] for k in list(best)[:4]]


# ---------------------------------------------------------------- persistence and info


def test_path_mode_survives_close_and_reopen(tmp_path: Path, corpus) -> None:
    n = 40
    ids, vectors, payloads = corpus[0][:n], corpus[1][:n], corpus[2][:n]
    with OmniStore("persist", path=str(tmp_path / "db")) as s:
        s.upsert(ids, vectors, payloads)
        s.set_info({"model": "nvidia/omni-embed-nemotron-3b", "revision": "abc", "dim": DIM})
        before = {f: s.search(_query(0), fusion=f, limit=7) for f in ("mean", "rrf", "dbsf", "max")}
    with OmniStore("persist", path=str(tmp_path / "db")) as s:
        assert s.dim == DIM
        assert s.count() == n
        assert s.get_info() == {"model": "nvidia/omni-embed-nemotron-3b", "revision": "abc", "dim": DIM}
        for f, hits in before.items():
            again = s.search(_query(0), fusion=f, limit=7)  # type: ignore[arg-type]
            assert [(h.id, h.payload) for h in again] == [(h.id, h.payload) for h in hits]
            # reloaded vectors are re-normalised from float32, so scores agree to float32 precision
            assert [h.score for h in again] == pytest.approx([h.score for h in hits], abs=1e-6)


def test_info_waits_for_lazy_creation_then_replaces(make: Make) -> None:
    s = make("lazy")
    assert s.dim is None and s.get_info() == {}
    s.set_info({"model": "m"})
    assert s.get_info() == {"model": "m"}
    assert "lazy" not in s.collections()
    s.upsert(["x"], [{"text": np.ones(4, dtype=np.float32)}])
    assert s.dim == 4
    assert s.get_info() == {"model": "m"}
    s.set_info({"revision": "r"})
    assert s.get_info() == {"revision": "r"}
    # a sentinel-free design: info never shows up as a point
    assert s.count() == 1


def test_eager_creation_with_dim_and_shared_client() -> None:
    client = QdrantClient(":memory:")
    s = OmniStore("eager", client=client, dim=8)
    assert client.collection_exists("eager")
    vectors = client.get_collection("eager").config.params.vectors
    assert isinstance(vectors, Mapping) and set(STREAMS) < set(vectors)
    assert all(vectors[s].size == 8 and vectors[s].distance == models.Distance.COSINE for s in STREAMS)
    assert vectors["fused_audio_video"].size == 16
    assert vectors["fused_audio_video"].distance == models.Distance.DOT
    s.close()
    assert client.collection_exists("eager")  # a passed-in client stays open


def test_store_does_not_import_torch() -> None:
    code = "import sys, omni_rag.store; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- errors


def test_empty_and_missing_collections_return_nothing(make: Make) -> None:
    s = make("nothing")
    assert s.search(np.ones(8)) == []
    assert s.search_groups(np.ones(8)) == []
    assert s.count() == 0
    assert s.get(["a"]) == [None]
    s.delete(["a"])
    empty = make("empty", dim=8)
    assert empty.search(np.ones(8)) == []
    assert empty.search(np.ones(8), fusion="rrf") == []
    assert empty.search_groups(np.ones(8), fusion="dbsf") == []


def test_query_errors(store: OmniStore) -> None:
    with pytest.raises(DimensionMismatchError, match="query has 5 dims"):
        store.search(np.ones(5))
    with pytest.raises(UnknownStreamError, match="smell"):
        store.search(_query(0), streams=["audio", "smell"])
    with pytest.raises(UnknownStreamError):
        store.search(_query(0), weights={"smell": 1.0})
    with pytest.raises(StoreInputError, match="dbsf"):
        store.search(_query(0), fusion="dbsf", weights={"audio": 2.0})
    with pytest.raises(StoreInputError):
        store.search(_query(0), fusion="sum")  # type: ignore[arg-type]
    with pytest.raises(StoreInputError):
        store.search(np.full(DIM, np.nan))
    with pytest.raises(StoreInputError):
        store.search(_query(0), weights={s: 0.0 for s in STREAMS})
    with pytest.raises(StoreInputError):
        store.search(_query(0), oversampling=0.5)
    assert issubclass(DimensionMismatchError, OmniError)


def test_upsert_errors_name_item_and_stream(make: Make) -> None:
    s = make("bad", dim=4)
    good = {"text": np.ones(4, dtype=np.float32)}
    with pytest.raises(DimensionMismatchError, match=r"item 1, stream 'audio'.*3 dims, expected 4") as err:
        s.upsert(["a", "b"], [good, {"text": np.ones(4), "audio": np.ones(3)}])
    assert err.value.index == 1 and err.value.stream == "audio"
    with pytest.raises(UnknownStreamError, match="item 0"):
        s.upsert(["a"], [{"smell": np.ones(4)}])
    with pytest.raises(StoreInputError, match=r"item 0, stream 'text'.*NaN"):
        s.upsert(["a"], [{"text": np.array([1.0, np.inf, 0.0, 0.0])}])
    with pytest.raises(StoreInputError, match=r"item 0, stream 'text'.*zeros"):
        s.upsert(["a"], [{"text": np.zeros(4)}])
    with pytest.raises(StoreInputError, match="item 1: item has no streams"):
        s.upsert(["a", "b"], [good, {}])
    with pytest.raises(StoreInputError, match="length mismatch"):
        s.upsert(["a", "b"], [good])
    with pytest.raises(StoreInputError, match="length mismatch"):
        s.upsert(["a"], [good], [{}, {}])
    with pytest.raises(StoreInputError, match="unknown payload key"):
        s.upsert(["a"], [good], [{"sauce": "x"}])
    # nothing of the failed batches was written
    assert s.count() == 0


def test_lazy_collection_takes_dim_from_first_batch_and_checks_the_rest(make: Make) -> None:
    s = make("lazydim")
    with pytest.raises(DimensionMismatchError, match="item 1"):
        s.upsert(["a", "b"], [{"text": np.ones(4)}, {"text": np.ones(6)}])
    assert "lazydim" not in s.collections() and s.dim is None


def test_existing_collection_mismatches() -> None:
    client = QdrantClient(":memory:")
    OmniStore("c", client=client, dim=8)
    with pytest.raises(CollectionMismatchError, match="size 8, not dim=16"):
        OmniStore("c", client=client, dim=16)
    assert OmniStore("c", client=client).dim == 8

    client.create_collection(
        "dot", vectors_config={s: models.VectorParams(size=8, distance=models.Distance.DOT) for s in STREAMS}
    )
    with pytest.raises(CollectionMismatchError, match="distance"):
        OmniStore("dot", client=client)

    client.create_collection(
        "partial",
        vectors_config={
            s: models.VectorParams(size=8, distance=models.Distance.COSINE) for s in ("text", "image")
        },
    )
    with pytest.raises(CollectionMismatchError, match=r"lacks named vector\(s\) \['audio', 'video'\]"):
        OmniStore("partial", client=client)

    client.create_collection(
        "plain", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE)
    )
    with pytest.raises(CollectionMismatchError, match="lacks named vector"):
        OmniStore("plain", client=client)

    client.create_collection(  # a collection written by omni-rag 0.1: streams, no fused vectors
        "v01",
        vectors_config={s: models.VectorParams(size=8, distance=models.Distance.COSINE) for s in STREAMS},
    )
    with pytest.raises(CollectionMismatchError, match=r"omni-rag 0\.1.*omni-rag migrate"):
        OmniStore("v01", client=client)


def test_constructor_argument_errors() -> None:
    with pytest.raises(StoreInputError):
        OmniStore("x", location=":memory:", path="/tmp/nope")
    with pytest.raises(StoreInputError):
        OmniStore("x", client=QdrantClient(":memory:"), url="http://localhost:6333")
    with pytest.raises(StoreInputError):
        OmniStore("x", write_batch_size=0)


@pytest.mark.parametrize("fusion", ["mean", "max", "rrf", "dbsf"])
def test_streams_added_after_a_search_are_searched(make: Make, fusion: str) -> None:
    """Streams no point has are not queried; a stream written after a search must be again."""
    store = make("present")
    rng = np.random.default_rng(7)
    audio = rng.standard_normal((5, DIM)).astype(np.float32)
    store.upsert([f"a{i}" for i in range(5)], [{"audio": v} for v in audio])
    query = rng.standard_normal(DIM).astype(np.float32)
    assert {h.id for h in store.search(query, fusion=fusion, limit=10)} == {f"a{i}" for i in range(5)}
    store.upsert(["t"], [{"text": query}])  # the query itself: first by score (rrf/dbsf tie it)
    hits = store.search(query, fusion=fusion, limit=10)
    assert {h.id for h in hits} == {"t", *(f"a{i}" for i in range(5))}
    if fusion in ("mean", "max"):
        assert hits[0].id == "t"
    store.delete([f"a{i}" for i in range(5)])
    assert [h.id for h in store.search(query, fusion=fusion, limit=10)] == ["t"]
