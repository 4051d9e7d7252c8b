"""Micro-batching: concurrent requests share one call of a batch function (one forward pass).

An idle server runs a job at once. Jobs that arrive while a batch runs queue up and all go into
the next batch; from then on (the last batch had company) a batch stays open while jobs keep
arriving at most ``max_wait_ms`` apart, for up to ``busy_wait_ms``: answers leave one by one, so
the clients' next queries trickle in a millisecond or two apart, and without the wait they would
be cut into many small batches. At 64 clients one batch embeds dozens of queries, far cheaper
than dozens of passes. A batch's answers are released together, so clients answered together
ask again together.

The batch function runs on one dedicated thread, whatever it does there: embed and search in
this process (:class:`~omni_rag.serve.answers.Answerer`), or wait for a model process that does
(:class:`~omni_rag.serve.model_process.ModelProcess`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from omni_rag.content import Content
from omni_rag.errors import OmniInputError

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder


@dataclass
class BatchStats:
    """What the batcher has done: batches (forward passes) and jobs run (for tests and /api/health)."""

    passes: int = 0
    queries: int = 0
    largest: int = 0

    def record(self, size: int) -> None:
        self.passes += 1
        self.queries += size
        self.largest = max(self.largest, size)


J = TypeVar("J")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)

#: A follow-up run once per key of a batch: one result per vector, in order.
KeyedRun = Callable[[K, list[np.ndarray]], Sequence[R]]

#: A batch function: one result (or the exception that job failed with) per job, in order.
BatchFunction = Callable[[list[J]], Sequence["R | Exception"]]


@dataclass
class _Pending(Generic[J, R]):
    job: J
    future: asyncio.Future[R] = field(repr=False)


class QueryBatcher(Generic[J, R]):
    """Runs jobs in micro-batches through one batch function, on one dedicated thread.

    Args:
        process: The batch function; an exception it returns for a job fails that job alone,
            one it raises fails the whole batch.
        max_batch: Most jobs per batch.
        max_wait_ms: Under load, the longest gap between two jobs of one batch.
        busy_wait_ms: Under load, the longest a batch stays open. An idle server never waits.
    """

    def __init__(
        self,
        process: BatchFunction[J, R],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        busy_wait_ms: float = 25.0,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0 or busy_wait_ms < 0:
            raise ValueError("max_batch must be >= 1, max_wait_ms and busy_wait_ms >= 0")
        self.process = process
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.busy_wait_s = busy_wait_ms / 1000.0
        self._last_size = 0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[J, R]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="omni-rag-batch")

    async def submit(self, job: J) -> R:
        """The job's result, computed together with whatever other jobs arrive meanwhile.

        Raises:
            Exception: what the batch function returned (or raised) for this job.
        """
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._serve())
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(job, future))
        return await future

    async def close(self) -> None:
        """Stop the batching task and its thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=True)

    async def _serve(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(self._queue)
            self.stats.record(len(batch))
            outcomes: Sequence[Any]
            try:
                outcomes = await loop.run_in_executor(self._thread, self.process, [p.job for p in batch])
            except Exception as error:  # the batch failed as a whole: every waiting request hears why
                outcomes = [error] * len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    async def _collect(self, queue: asyncio.Queue[_Pending[J, R]]) -> list[_Pending[J, R]]:
        """The next batch: every job waiting, and under load those that keep arriving."""
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


def embed_each(
    embedder: OmniEmbedder, queries: list[Content], batch_size: int
) -> list[np.ndarray | OmniInputError]:
    """Query vectors in one forward pass (or as few as the token budget allows); a query that
    cannot be embedded gets the error naming its field and why, and fails only itself."""
    result = embedder.embed_queries(queries, errors="skip", batch_size=batch_size)
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


def per_key(items: Sequence[tuple[K, np.ndarray]], run: KeyedRun[K, R]) -> list[R | Exception]:
    """``run`` once for the vectors of each key (one store call for a batch's queries that share
    their search options); when a shared call fails, its vectors run alone to find whose it was."""
    groups: dict[K, list[int]] = {}
    for number, (key, _) in enumerate(items):
        groups.setdefault(key, []).append(number)
    outcomes: dict[int, R | Exception] = {}
    for key, members in groups.items():
        results: Sequence[R | Exception]
        try:
            results = run(key, [items[n][1] for n in members])
        except Exception as error:
            results = [error] if len(members) == 1 else [_alone(run, key, items[n][1]) for n in members]
        outcomes.update(zip(members, results, strict=True))
    return [outcomes[n] for n in range(len(items))]


def _alone(run: KeyedRun[K, R], key: K, vector: np.ndarray) -> R | Exception:
    try:
        return run(key, [vector])[0]
    except Exception as error:
        return error
