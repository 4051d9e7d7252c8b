"""Micro-batching of query embeddings: concurrent requests share one forward pass of one model.

A request's query waits at most ``max_wait_ms`` for company; while a forward pass runs, newly
arrived queries queue up and all go into the next pass. At one client a query goes straight
through (no pass is running, nothing else arrives within the window); at 64 clients one pass
embeds dozens of queries, which on a batch-friendly model is far cheaper than dozens of passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


@dataclass
class _Pending:
    query: Content
    future: asyncio.Future[np.ndarray] = field(repr=False)


class QueryBatcher:
    """Embeds queries in micro-batches on one dedicated thread (the model is used by it alone).

    Args:
        embedder: The one model.
        max_batch: Most queries per forward pass.
        max_wait_ms: How long the first query of a batch waits for others.
    """

    def __init__(self, embedder: OmniEmbedder, *, max_batch: int = 64, max_wait_ms: float = 2.0) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._model_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="omni-rag-embed")

    async def embed(self, query: Content) -> np.ndarray:
        """The query's vector, embedded together with whatever other queries arrive meanwhile.

        Raises:
            OmniInputError: the query could not be embedded (unreadable media), naming why.
        """
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._serve())
        assert self._queue is not None
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(query, future))
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
                vectors = await loop.run_in_executor(
                    self._model_thread, self._embed, [p.query for p in batch]
                )
            except Exception as error:  # the model failed as a whole: every waiting request hears why
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            for pending, vector in zip(batch, vectors, strict=True):
                if pending.future.done():  # the client went away
                    continue
                if isinstance(vector, OmniInputError):
                    pending.future.set_exception(vector)
                else:
                    pending.future.set_result(vector)

    async def _collect(self, queue: asyncio.Queue[_Pending]) -> list[_Pending]:
        """The next batch: the first waiting query, then any arriving within the window."""
        batch = [await queue.get()]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    def _embed(self, queries: list[Content]) -> list[np.ndarray | OmniInputError]:
        """One forward pass (or as few as the token budget allows); a bad query fails only itself."""
        self.stats.record(len(queries))
        result = self.embedder.embed_queries(queries, errors="skip")
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
