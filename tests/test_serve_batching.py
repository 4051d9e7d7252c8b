"""``QueryBatcher`` and ``Answerer``: concurrent queries share forward passes of one model; one bad
query fails alone; queries sharing search options share one store call."""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omni_rag import Content
from omni_rag.errors import OmniInputError
from omni_rag.retriever import OmniRetriever
from omni_rag.serve import QueryBatcher
from omni_rag.serve.answers import Answer, Answerer, Refusal, SearchJob
from omni_rag.serve.batching import embed_each, per_key
from omni_rag.store import OmniStore


def embedding_batcher(embedder: Any, max_batch: int = 64) -> QueryBatcher[Any, Any]:
    return QueryBatcher(partial(embed_each, embedder, batch_size=max_batch), max_batch=max_batch)


async def submit_all(batcher: QueryBatcher[Any, Any], jobs: list[Any]) -> list[Any]:
    try:
        return await asyncio.gather(*(batcher.submit(job) for job in jobs), return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_queries_share_passes_and_match_one_by_one(embedder: Any) -> None:
    queries = [Content(text=f"query {i}: {'bread ' * (i % 5)}") for i in range(24)]
    batcher = embedding_batcher(embedder)
    vectors = asyncio.run(submit_all(batcher, queries))
    alone = embedder.embed_queries(queries, batch_size=1)
    # idle: the first query goes alone; the rest queued meanwhile share the next pass
    assert batcher.stats.queries == 24 and batcher.stats.passes <= 3 and batcher.stats.largest >= 12
    for vector, reference in zip(vectors, alone, strict=True):
        assert float(np.dot(vector, reference)) == pytest.approx(1.0, abs=1e-5)


def test_max_batch_caps_a_pass(embedder: Any) -> None:
    batcher = embedding_batcher(embedder, max_batch=4)
    asyncio.run(submit_all(batcher, [Content(text=f"q{i}") for i in range(10)]))
    assert batcher.stats.largest <= 4 and batcher.stats.passes >= 3 and batcher.stats.queries == 10


def test_a_bad_query_fails_alone(embedder: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"no sound here" * 100)
    queries = [Content(text="good one"), Content(audio=str(broken)), Content(text="good two")]
    batcher = embedding_batcher(embedder)
    good, bad, also_good = asyncio.run(submit_all(batcher, queries))
    assert isinstance(good, np.ndarray) and isinstance(also_good, np.ndarray)
    assert isinstance(bad, OmniInputError) and bad.field == "audio" and bad.reason
    assert batcher.stats.passes == 1


def test_a_batch_that_fails_as_a_whole_fails_each_waiting_job() -> None:
    def broken(jobs: list[int]) -> list[int]:
        raise RuntimeError(f"down with {len(jobs)}")

    results = asyncio.run(submit_all(QueryBatcher(broken), [1, 2, 3]))
    assert all(isinstance(r, RuntimeError) and str(r).startswith("down with") for r in results)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        QueryBatcher(list, max_batch=0)
    with pytest.raises(ValueError, match="stage"):
        QueryBatcher(max_batch=4)


def test_per_key_runs_once_per_key_and_a_failure_stays_with_its_vector(embedder: Any) -> None:
    calls: list[int] = []
    texts = [f"query {i}" for i in range(9)]
    vectors = list(embedder.embed_queries([*texts, "poison"]))
    poison = vectors[-1]

    def run(key: Any, batch: list[np.ndarray]) -> list[float]:
        calls.append(len(batch))
        if any(v is poison for v in batch):
            raise RuntimeError("this one breaks")
        return [float(v[0]) for v in batch]

    keys = ["a" if i % 3 else "b" for i in range(9)] + ["a"]
    *results, broken = per_key(list(zip(keys, vectors, strict=True)), run)
    assert results == pytest.approx([float(v[0]) for v in vectors[:-1]], abs=1e-6)
    assert isinstance(broken, RuntimeError)
    # key "b" once (3 vectors), key "a" once (7 with the poison), then each of "a" alone
    assert sorted(calls[:2]) == [3, 7] and sorted(calls[2:]) == [1] * 7


@pytest.fixture
def retriever(embedder: Any, tmp_path: Path) -> Any:
    store = OmniStore("answers", path=tmp_path / "store")
    retriever = OmniRetriever(embedder, store)
    retriever.add([Content(text=f"note {i} about {'bread' if i % 2 else 'rivers'}") for i in range(12)])
    yield retriever
    store.close()


def test_answerer_answers_each_job_as_the_retriever_searches(retriever: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"no sound here" * 100)
    jobs = [
        SearchJob(Content(text="bread"), 3, "mean", None),
        SearchJob(Content(audio=str(broken)), 3, "mean", None),
        SearchJob(Content(text="rivers"), 5, "max", ("text",)),
        SearchJob(Content(text="rivers"), 3, "mean", None),
    ]
    answerer = Answerer(retriever)
    first, refused, other, last = answerer.answer(jobs)
    assert isinstance(refused, Refusal) and refused.status == 400
    assert refused.detail.startswith("cannot use the query: audio:")
    for outcome, job in [(first, jobs[0]), (other, jobs[2]), (last, jobs[3])]:
        assert isinstance(outcome, Answer)
        hits = json.loads(outcome.body)["hits"]
        expected = retriever.search(job.content, k=job.k, fusion=job.fusion, streams=job.streams)
        assert [h["id"] for h in hits] == [h.id for h in expected]
        assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-5)
        assert all(h["kind"] == "text" and h["media_url"] is None for h in hits)
    assert answerer.count() == 12 and answerer.media("no-such-point") is None


def test_an_app_made_from_a_retriever_answers_in_this_process(retriever: Any) -> None:
    """``create_app(retriever)``, the Python way in: the Answerer on a thread, no model process."""
    from fastapi.testclient import TestClient

    from omni_rag.serve import create_app

    with TestClient(create_app(retriever)) as client:
        health = client.get("/api/health").json()
        assert health["points"] == 12 and health["collection"] == "answers"
        found = client.post("/api/search", json={"text": "bread", "k": 4}).json()["hits"]
        refused = client.post("/api/search", json={"text": "bread", "k": 0})
    assert [h["id"] for h in found] == [h.id for h in retriever.search("bread", k=4)]
    assert refused.status_code == 400 and "k" in refused.json()["detail"]


def test_stage_one_runs_the_next_batch_while_stage_two_runs_this_one() -> None:
    """The model embeds batch 2 while the store searches batch 1; batch 2 holds every job that
    arrived while the model was busy with batch 1."""
    import threading

    both = threading.Barrier(2, timeout=10)
    sizes: list[int] = []

    def first(jobs: list[int]) -> list[int]:
        sizes.append(len(jobs))
        if len(sizes) == 2:
            both.wait()  # returns only while stage two holds batch 1
        else:
            time.sleep(0.2)  # batch 1 in stage one: the others queue meanwhile
        return [j * 10 for j in jobs]

    def second(values: list[int]) -> list[int]:
        if values == [0]:  # batch 1
            both.wait()
        return [v + 1 for v in values]

    async def go() -> list[Any]:
        batcher: QueryBatcher[int, int] = QueryBatcher(first, second)
        try:
            head = asyncio.ensure_future(batcher.submit(0))
            await asyncio.sleep(0.05)
            return await asyncio.gather(head, *(batcher.submit(j) for j in range(1, 6)))
        finally:
            await batcher.close()

    assert asyncio.run(go()) == [1, 11, 21, 31, 41, 51]
    assert sizes == [1, 5]


def test_input_errors_cross_processes_whole() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(OmniInputError("no audio track", index=3, field="audio")))
    assert (type(error), error.index, error.field, error.reason) == (
        OmniInputError,
        3,
        "audio",
        "no audio track",
    )
    assert str(error) == "item 3, field 'audio': no audio track"
