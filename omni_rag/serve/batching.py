"""Micro-batching: concurrent requests share one call of each stage of a pipeline (one forward pass).

A batch runs through the stages in order, each stage on a thread of its own, so the server's
:class:`~omni_rag.serve.answers.Answerer` searches one batch (stage two) while the model embeds
the next (stage one). An idle server runs a job at once. Jobs that arrive while stage one is
busy queue up, and all go into the next batch when it is free: at 64 clients one batch embeds
dozens of queries, far cheaper than dozens of passes, and the model never waits for a batch to
fill. A batch's answers are released together.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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

#: A stage: one output per input, in order; an exception in the list fails that job alone (later
#: stages must pass it on), one raised fails the whole batch.
Stage = Callable[[list[Any]], Sequence[Any]]

#: A follow-up run once per key of a batch: one result per vector, in order.
KeyedRun = Callable[[K, list[np.ndarray]], Sequence[R]]


@dataclass
class _Pending(Generic[R]):
    job: Any
    future: asyncio.Future[R] = field(repr=False)


class QueryBatcher(Generic[J, R]):
    """Runs jobs in micro-batches through a pipeline of stages, each on a thread of its own.

    Args:
        stages: The first gets the batch's jobs, each next one the previous one's outputs; the
            last one's outputs are the jobs' results.
        max_batch: Most jobs per batch.
    """

    def __init__(self, *stages: Stage, max_batch: int = 64) -> None:
        if max_batch < 1 or not stages:
            raise ValueError("give at least one stage, and max_batch must be >= 1")
        self.stages = stages
        self.max_batch = max_batch
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[R]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._threads = [
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"omni-rag-stage{n}")
            for n in range(len(stages))
        ]

    async def submit(self, job: J) -> R:
        """The job's result, computed together with whatever other jobs arrive meanwhile.

        Raises:
            Exception: what a stage returned (or raised) for this job.
        """
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._serve())
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(job, future))
        return await future

    async def close(self) -> None:
        """Stop taking jobs, let the batches running finish, stop the threads."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, *self._running, return_exceptions=True)
        for thread in self._threads:
            thread.shutdown(wait=True)

    async def _serve(self) -> None:
        assert self._queue is not None
        first_free = asyncio.Event()
        first_free.set()
        while True:
            batch = await self._collect(self._queue, first_free)
            first_free.clear()
            self.stats.record(len(batch))
            task = asyncio.get_running_loop().create_task(self._run(batch, first_free))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _collect(
        self, queue: asyncio.Queue[_Pending[R]], first_free: asyncio.Event
    ) -> list[_Pending[R]]:
        """The next batch: every job waiting, and those that arrive while stage one is busy."""
        batch = [await queue.get()]
        while len(batch) < self.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
            elif first_free.is_set():
                break
            else:
                arrival = asyncio.ensure_future(queue.get())
                freed = asyncio.ensure_future(first_free.wait())
                await asyncio.wait({arrival, freed}, return_when=asyncio.FIRST_COMPLETED)
                freed.cancel()
                if not arrival.cancel():  # it completed: the job is ours
                    batch.append(arrival.result())
        return batch

    async def _run(self, batch: list[_Pending[R]], first_free: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        outputs: Sequence[Any] = [p.job for p in batch]
        try:
            for number, (stage, thread) in enumerate(zip(self.stages, self._threads, strict=True)):
                try:
                    outputs = await loop.run_in_executor(thread, stage, list(outputs))
                finally:
                    if number == 0:
                        first_free.set()
        except Exception as error:  # a stage failed as a whole: every waiting request hears why
            outputs = [error] * len(batch)
        for pending, outcome in zip(batch, outputs, strict=True):
            if pending.future.done():  # the client went away
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)


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
