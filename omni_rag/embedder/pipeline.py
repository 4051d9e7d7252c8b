"""Preparation in background threads, a bounded distance ahead of the model, in input order.

Decoding media (PyAV), resizing frames, audio features and tokenisation release the GIL for
most of their time, so threads overlap them with each other and with the model's forward
pass (which waits on the GPU). Results come back in submission order, so indices, errors
and ``errors="skip"`` behave exactly as in a serial loop; at most ``ahead`` jobs are in
flight or finished-but-unconsumed, which bounds the memory held by decoded media.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
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


class PrepPool:
    """Preparation threads kept from one embed call to the next.

    Starting threads per call cost more than preparing a text query (2-3 ms a call on a busy
    2-core machine, paid by every single-query search); kept threads cost nothing while idle.
    A pool whose size no longer matches ``num_workers`` is replaced, never shut down under a
    call still using it (it goes when its last user lets it go).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0
        self._lock = threading.Lock()

    def get(self, num_workers: int) -> ThreadPoolExecutor | None:
        """The pool of ``num_workers`` threads; ``None`` for one worker (the caller's thread)."""
        if num_workers <= 1:
            return None
        with self._lock:
            if self._pool is None or self._size != num_workers:
                self._pool = ThreadPoolExecutor(num_workers, "omni-rag-prep")
                self._size = num_workers
            return self._pool


class Workers:
    """One call's jobs on a thread pool, or none for ``num_workers <= 1`` (jobs run in the caller).

    Args:
        num_workers: Threads.
        pool: A shared pool (:class:`PrepPool`) to run on; by default the call starts its own.

    Leaving the block cancels this call's queued jobs and waits for its running ones, so
    nothing of a failed call keeps working (or holding decoded media) after it returns.
    """

    def __init__(self, num_workers: int, pool: ThreadPoolExecutor | None = None) -> None:
        self.num_workers = num_workers
        self._owned = pool is None
        if num_workers <= 1:
            self.pool = None
        else:
            self.pool = pool if pool is not None else ThreadPoolExecutor(num_workers, "omni-rag-prep")
        self._live: set[Future[object]] = set()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is None:
            return
        if self._owned:
            self.pool.shutdown(wait=True, cancel_futures=True)
            return
        live = list(self._live)
        for future in live:
            future.cancel()
        wait(live)

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        """Run ``fn`` in a worker (or right now, without workers) and return its future."""
        if self.pool is not None:
            future = self.pool.submit(fn)
            self._live.add(future)  # type: ignore[arg-type]
            future.add_done_callback(self._live.discard)  # type: ignore[arg-type]
            return future
        done: Future[R] = Future()
        try:
            done.set_result(fn())
        except Exception as error:
            done.set_exception(error)
        return done


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
