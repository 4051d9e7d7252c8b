"""Reading and deleting by payload filter, and payload-only reads: what the framework stores need.

Both engines (Qdrant Edge and qdrant-client's in-memory mode) answer the same.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from omni_rag.store import OmniStore, StoreInputError

DIM = 8
Make = Callable[[str], OmniStore]


@pytest.fixture(params=["edge", "qdrant-client"])
def make(request: pytest.FixtureRequest) -> Make:
    def factory(name: str) -> OmniStore:
        if request.param == "edge":
            return OmniStore(name, location=":memory:")
        return OmniStore(name, client=QdrantClient(":memory:"))

    return factory


def _fill(store: OmniStore, n: int = 30) -> None:
    rng = np.random.default_rng(0)
    ids = [f"doc{i % 3}#{i}" for i in range(n)]
    vectors = [{"text": rng.normal(size=DIM)} for _ in range(n)]
    payloads = [{"metadata": {"doc": f"doc{i % 3}", "n": i}} for i in range(n)]
    store.upsert(ids, vectors, payloads)


def test_scroll_with_a_filter_yields_exactly_the_matching_points(make: Make) -> None:
    store = make("sel")
    _fill(store)
    got = {p.id for p in store.scroll(7, filter={"metadata.doc": "doc1"})}
    assert got == {f"doc1#{i}" for i in range(30) if i % 3 == 1}
    ranged = models.Filter(must=[models.FieldCondition(key="metadata.n", range=models.Range(gte=25))])
    assert {p.payload["metadata"]["n"] for p in store.scroll(filter=ranged)} == set(range(25, 30))


def test_payload_only_reads_carry_no_vectors(make: Make) -> None:
    store = make("sel")
    _fill(store)
    (light,) = store.scroll(filter={"metadata.n": 4}, with_vectors=False)
    assert light.vectors == {} and light.payload["metadata"] == {"doc": "doc1", "n": 4}
    (full,) = store.get(["doc1#4"])
    (bare,) = store.get(["doc1#4"], with_vectors=False)
    assert full is not None and set(full.vectors) == {"text"}
    assert bare is not None and bare.vectors == {} and bare.payload == full.payload


def test_delete_where_removes_every_match_and_nothing_else(make: Make) -> None:
    store = make("sel")
    _fill(store)
    assert store.delete_where({"metadata.doc": "doc2"}, batch_size=4) == 10
    assert store.count() == 20
    assert store.count({"metadata.doc": "doc2"}) == 0
    assert store.delete_where({"metadata.doc": "doc2"}) == 0
    assert store.get(["doc0#0", "doc2#2"], with_vectors=False)[1] is None


def test_delete_where_refuses_an_empty_filter(make: Make) -> None:
    store = make("sel")
    _fill(store)
    for empty in ({}, models.Filter()):
        with pytest.raises(StoreInputError, match="non-empty filter"):
            store.delete_where(empty)
    assert store.count() == 30


@pytest.mark.parametrize("fusion", ["mean", "max", "rrf", "dbsf"])
def test_search_many_answers_as_search_does_query_by_query(make: Make, fusion: str) -> None:
    # mixed stream sets: audio+video (the fused vector), audio alone, text+image (per-stream candidates)
    store = make("many")
    rng = np.random.default_rng(1)
    kinds = [("audio", "video"), ("audio",), ("text", "image"), ("video",)]
    ids = [f"p{i}" for i in range(40)]
    vectors = [{s: rng.normal(size=DIM) for s in kinds[i % 4]} for i in range(40)]
    store.upsert(ids, vectors, [{"metadata": {"n": i}} for i in range(40)])
    queries = [rng.normal(size=DIM) for _ in range(6)]
    options: dict = {"fusion": fusion, "limit": 7, "filter": {"metadata.n": list(range(0, 40, 2))}}
    if fusion != "dbsf":
        options["streams"] = ["audio", "video", "text"]
    many = store.search_many(queries, **options)
    alone = [store.search(q, **options) for q in queries]
    assert [[h.id for h in hits] for hits in many] == [[h.id for h in hits] for hits in alone]
    assert all(len(hits) == 7 for hits in many)
    for got, want in zip(many, alone, strict=True):
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-6)
        for a, b in zip(got, want, strict=True):
            assert a.stream_scores == pytest.approx(b.stream_scores, abs=1e-6)
    assert store.search_many([], **options) == []
    with pytest.raises(StoreInputError):  # a bad query anywhere in the list is refused, as alone
        store.search_many([queries[0], np.zeros(DIM + 1)], **options)


def test_search_many_on_an_empty_collection_answers_every_query(make: Make) -> None:
    assert make("nothing").search_many([np.ones(DIM), np.ones(DIM)]) == [[], []]
