"""Preparation in background threads, a bounded distance ahead of the model, in input order.

Decoding media (PyAV), resizing frames, audio features and tokenisation release the GIL for
most of their time, so threads overlap them with each other and with the model's forward
pass (which waits on the GPU). Results come back in submission order, so indices, errors
and ``errors="skip"`` behave exactly as in a serial loop; at most ``ahead`` jobs are in
flight or finished-but-unconsumed, which bounds the memory held by decoded media.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_num_workers() -> int:
    """``min(4, cpu count)``: media decoding scales to a few threads, then memory bandwidth wins."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class Outcome(Generic[T, R]):
    """One job's input and either its value or the exception it raised."""

    job: T
    value: R | None = None
    error: Exception | None = None


class Workers:
    """A thread pool, or none for ``num_workers <= 1`` (every job then runs in the caller).

    Args:
        num_workers: Threads.
    """

    def __init__(self, num_workers: int) -> None:
        self.num_workers = num_workers
        self.pool = ThreadPoolExecutor(num_workers, "omni-rag-prep") if num_workers > 1 else None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        """Run ``fn`` in a worker (or right now, without workers) and return its future."""
        if self.pool is not None:
            return self.pool.submit(fn)
        future: Future[R] = Future()
        try:
            future.set_result(fn())
        except Exception as error:
            future.set_exception(error)
        return future


class Prefetcher(Generic[T, R]):
    """``fn`` over ``jobs`` in order, with up to ``ahead`` jobs running ahead of the consumer.

    Without a pool nothing runs ahead: :meth:`take` runs the next job when asked and
    :meth:`poll` returns nothing, so ``num_workers=1`` is exactly the serial loop.
    """

    def __init__(self, workers: Workers, fn: Callable[[T], R], jobs: Sequence[T], *, ahead: int) -> None:
        self._workers = workers
        self._fn = fn
        self._jobs = jobs
        self._next = 0
        self._pending: deque[tuple[T, Future[R]]] = deque()
        self._ahead = max(1, ahead) if workers.pool is not None else 0
        self._refill()

    @property
    def exhausted(self) -> bool:
        """Every job has been taken."""
        return self._next >= len(self._jobs) and not self._pending

    def take(self) -> Outcome[T, R]:
        """The next job's outcome, waiting for it (or, without workers, running it) if needed.

        Raises:
            IndexError: Every job has been taken already.
        """
        if not self._pending:
            self._submit_next()
        job, future = self._pending.popleft()
        self._refill()
        error = future.exception()
        return Outcome(job, None, error) if isinstance(error, Exception) else Outcome(job, future.result())

    def poll(self) -> list[Outcome[T, R]]:
        """The outcomes already finished at the head of the queue, without waiting."""
        done: list[Outcome[T, R]] = []
        while self._pending and self._pending[0][1].done():
            done.append(self.take())
        return done

    def _refill(self) -> None:
        while self._next < len(self._jobs) and len(self._pending) < self._ahead:
            self._submit_next()

    def _submit_next(self) -> None:
        job = self._jobs[self._next]
        self._next += 1
        self._pending.append((job, self._workers.submit(lambda: self._fn(job))))
