"""``QueryBatcher``: concurrent queries share forward passes of one model; one bad query fails alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omni_rag import Content
from omni_rag.errors import OmniInputError
from omni_rag.serve import QueryBatcher


async def embed_all(batcher: QueryBatcher, queries: list[Content]) -> list[Any]:
    try:
        return await asyncio.gather(*(batcher.embed(q) for q in queries), return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_queries_share_passes_and_match_one_by_one(embedder: Any) -> None:
    queries = [Content(text=f"query {i}: {'bread ' * (i % 5)}") for i in range(24)]
    batcher = QueryBatcher(embedder, max_batch=64, max_wait_ms=20)
    vectors = asyncio.run(embed_all(batcher, queries))
    alone = embedder.embed_queries(queries, batch_size=1)
    # idle: the first query goes alone; the rest queued meanwhile share the next pass
    assert batcher.stats.queries == 24 and batcher.stats.passes <= 3 and batcher.stats.largest >= 12
    for vector, reference in zip(vectors, alone, strict=True):
        assert float(np.dot(vector, reference)) == pytest.approx(1.0, abs=1e-5)


def test_max_batch_caps_a_pass(embedder: Any) -> None:
    batcher = QueryBatcher(embedder, max_batch=4, max_wait_ms=20)
    asyncio.run(embed_all(batcher, [Content(text=f"q{i}") for i in range(10)]))
    assert batcher.stats.largest <= 4 and batcher.stats.passes >= 3 and batcher.stats.queries == 10


def test_a_bad_query_fails_alone(embedder: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"no sound here" * 100)
    queries = [Content(text="good one"), Content(audio=str(broken)), Content(text="good two")]
    batcher = QueryBatcher(embedder, max_wait_ms=50)
    good, bad, also_good = asyncio.run(embed_all(batcher, queries))
    assert isinstance(good, np.ndarray) and isinstance(also_good, np.ndarray)
    assert isinstance(bad, OmniInputError) and bad.field == "audio" and bad.reason
    assert batcher.stats.passes == 1


def test_bad_settings_are_refused(embedder: Any) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        QueryBatcher(embedder, max_batch=0)


def test_follow_ups_run_once_per_key_and_a_failure_stays_with_its_query(embedder: Any) -> None:
    calls: list[int] = []

    def then(vectors: list[np.ndarray]) -> list[float]:
        calls.append(len(vectors))
        if any(float(v[0]) == float(poison[0]) for v in vectors):
            raise RuntimeError("this one breaks")
        return [float(v[0]) for v in vectors]

    poison = embedder.embed_queries(["poison"])[0]
    texts = [f"query {i}" for i in range(9)]
    expected = [float(v[0]) for v in embedder.embed_queries(texts)]

    async def go() -> list[Any]:
        batcher = QueryBatcher(embedder, max_batch=64, max_wait_ms=50)
        try:
            # the first query goes alone (idle server); the others share the next pass
            first = asyncio.ensure_future(batcher.run(Content(text="warm"), then, "a"))
            await asyncio.sleep(0)
            rest = [batcher.run(Content(text=t), then, "a" if i % 3 else "b") for i, t in enumerate(texts)]
            rest.append(batcher.run(Content(text="poison"), then, "a"))
            return await asyncio.gather(first, *rest, return_exceptions=True)
        finally:
            await batcher.close()

    _, *results, broken = asyncio.run(go())
    assert results == pytest.approx(expected, abs=1e-5)
    assert isinstance(broken, RuntimeError)
    # the shared pass: key "b" once (3 queries), key "a" once (7 with the poison), then alone each
    assert calls[1:3] == [7, 3] or calls[1:3] == [3, 7]
    assert sorted(calls[3:]) == [1] * 7
