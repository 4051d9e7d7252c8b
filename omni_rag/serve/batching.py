"""Micro-batching of query embeddings: concurrent requests share one forward pass of one model.

An idle server embeds a query at once. Queries that arrive while a forward pass runs queue up
and all go into the next pass; from then on (the last pass had company) a batch stays open while
queries keep arriving at most ``max_wait_ms`` apart, for up to ``busy_wait_ms``: answers leave
one by one, so the clients' next queries trickle in a millisecond or two apart, and without the
wait they would be cut into many small passes. At 64 clients one pass embeds dozens of queries,
far cheaper than dozens of passes.

The follow-up (the store search and its JSON) runs on the same thread right after the pass, once
for all the batch's queries that share a key (the same search options): one store call for them,
not one each. A batch's answers are released together, so clients answered together ask again
together.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from omni_rag.content import Content
from omni_rag.errors import OmniInputError

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder


@dataclass
class BatchStats:
    """What the batcher has done: forward passes and queries embedded (for tests and /api/health)."""

    passes: int = 0
    queries: int = 0
    largest: int = 0

    def record(self, size: int) -> None:
        self.passes += 1
        self.queries += size
        self.largest = max(self.largest, size)


T = TypeVar("T")


#: A follow-up: results for a list of vectors, one per vector, in order.
Then = Callable[[list[np.ndarray]], list[T]]


@dataclass
class _Pending(Generic[T]):
    query: Content
    then: Then[T]
    key: Hashable
    future: asyncio.Future[T] = field(repr=False)


class QueryBatcher:
    """Embeds queries in micro-batches on one dedicated thread (the model is used by it alone).

    Args:
        embedder: The one model.
        max_batch: Most queries per forward pass.
        max_wait_ms: Under load, the longest gap between two queries of one batch.
        busy_wait_ms: Under load, the longest a batch stays open. An idle server never waits.
    """

    def __init__(
        self,
        embedder: OmniEmbedder,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        busy_wait_ms: float = 25.0,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0 or busy_wait_ms < 0:
            raise ValueError("max_batch must be >= 1, max_wait_ms and busy_wait_ms >= 0")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.busy_wait_s = busy_wait_ms / 1000.0
        self._last_size = 0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._model_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="omni-rag-embed")

    async def embed(self, query: Content) -> np.ndarray:
        """The query's vector, embedded together with whatever other queries arrive meanwhile.

        Raises:
            OmniInputError: the query could not be embedded (unreadable media), naming why.
        """
        return await self.run(query, lambda vectors: vectors)

    async def run(self, query: Content, then: Then[T], key: Hashable | None = None) -> T:
        """The query's result from ``then``, called on the model's thread right after its batch's pass.

        ``then`` gets the vectors of every query in the batch with an equal ``key`` (``None``: this
        query alone) and returns one result per vector; queries sharing a key must be served
        alike by either one's ``then``.

        Raises:
            OmniInputError: the query could not be embedded; or whatever ``then`` raised for it.
        """
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._serve())
        assert self._queue is not None
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(query, then, key if key is not None else object(), future))
        return await future

    async def close(self) -> None:
        """Stop the batching task and the model thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._model_thread.shutdown(wait=True)

    async def _serve(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(self._queue)
            try:
                outcomes = await loop.run_in_executor(self._model_thread, self._process, batch)
            except Exception as error:  # the model failed as a whole: every waiting request hears why
                outcomes = [error] * len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    async def _collect(self, queue: asyncio.Queue[_Pending[Any]]) -> list[_Pending[Any]]:
        """The next batch: every query waiting, and under load those that keep arriving."""
        batch = [await queue.get()]
        cap = time.perf_counter() + (self.busy_wait_s if self._last_size > 1 else 0.0)
        while len(batch) < self.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            left = min(cap, time.perf_counter() + self.max_wait_s) - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except TimeoutError:
                break
        self._last_size = len(batch)
        return batch

    def _process(self, batch: list[_Pending[Any]]) -> list[Any]:
        """Embed the batch, then run the follow-ups; a failure fails only its own query."""
        outcomes: list[Any] = [None] * len(batch)
        groups: dict[Hashable, list[tuple[int, np.ndarray]]] = {}
        for number, vector in enumerate(self._embed([p.query for p in batch])):
            if isinstance(vector, OmniInputError):
                outcomes[number] = vector
            else:
                groups.setdefault(batch[number].key, []).append((number, vector))
        for members in groups.values():
            then = batch[members[0][0]].then
            try:
                results = then([vector for _, vector in members])
            except Exception as error:
                if len(members) == 1:
                    outcomes[members[0][0]] = error
                    continue
                results = [_alone(then, vector) for _, vector in members]  # find whose it was
            for (number, _), result in zip(members, results, strict=True):
                outcomes[number] = result
        return outcomes

    def _embed(self, queries: list[Content]) -> list[np.ndarray | OmniInputError]:
        """One forward pass (or as few as the token budget allows); a bad query fails only itself."""
        self.stats.record(len(queries))
        result = self.embedder.embed_queries(queries, errors="skip", batch_size=self.max_batch)
        reasons = {f.index: f for f in result.failures}
        out: list[np.ndarray | OmniInputError] = []
        for index, vector in enumerate(result.embeddings):
            if vector is not None:
                out.append(vector)
            else:
                failure = reasons.get(index)
                field_name = failure.field if failure is not None and failure.field else "query"
                reason = failure.reason if failure is not None else "could not be embedded"
                out.append(OmniInputError(reason, field=field_name))
        return out


def _alone(then: Then[T], vector: np.ndarray) -> T | Exception:
    try:
        return then([vector])[0]
    except Exception as error:
        return error
