"""``omni-rag serve``'s model and store in a process of their own.

In one process the HTTP side (the event loop parsing requests) and the model side (tokenising,
the forward pass's Python, the store search) take turns on one GIL, so under load a server used
one core. With the model process the HTTP process only parses, forwards picklable jobs
(:class:`~omni_rag.serve.answers.SearchJob`) and returns finished JSON, while the model process
embeds and searches the next batch.

The model process is spawned (never forked from a process that may hold CUDA or threads), loads
the model and opens the store itself, so the model is loaded once. It ignores Ctrl-C (which
reaches the whole process group) and stops when told to, or when the HTTP process is gone, even
killed with SIGKILL: its pipe then reads end-of-file. Either way it closes the store.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from omni_rag.retriever import OmniRetriever
from omni_rag.serve.answers import Answerer, Outcome, SearchJob
from omni_rag.serve.media import MediaSource

logger = logging.getLogger(__name__)

#: What the HTTP process may ask of the model process.
_CALLS = frozenset({"answer", "count", "media"})
#: Seconds the model process gets to close its store when asked to stop.
STOP_TIMEOUT_S = 60.0


class ModelProcessError(RuntimeError):
    """The model process could not start, or stopped, or failed a call.

    Attributes:
        code: The exit status a start-up failure asks for (a CLI error's), else ``None``.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Started:
    collection: str
    model_id: str


@dataclass(frozen=True)
class _Failed:
    message: str
    code: int | None


class ModelProcess:
    """The :class:`~omni_rag.serve.answers.Backend` of ``omni-rag serve``: an :class:`Answerer`
    in a spawned process, called over a pipe (one call at a time, as the store wants).

    Args:
        factory: Builds the retriever in the new process (picklable: a module-level function,
            or a ``functools.partial`` of one). An error it raises with ``message`` and ``code``
            attributes (the CLI's) keeps them.
        max_batch: Most queries per forward pass.

    Raises:
        ModelProcessError: the retriever could not be built (its reason and exit status).
    """

    def __init__(self, factory: Callable[[], OmniRetriever], max_batch: int = 64) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_calls, args=(child, factory, max_batch), name="omni-rag-model", daemon=True
        )
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        started = self._receive()
        if isinstance(started, _Failed):
            self._process.join(STOP_TIMEOUT_S)
            raise ModelProcessError(started.message, started.code)
        self.collection = started.collection
        self.model_id = started.model_id

    def answer(self, jobs: list[SearchJob]) -> list[Outcome]:
        result: list[Outcome] = self._call("answer", jobs)
        return result

    def count(self) -> int:
        return int(self._call("count"))

    def media(self, point_id: str) -> MediaSource | None:
        result: MediaSource | None = self._call("media", point_id)
        return result

    def close(self) -> None:
        """Ask the model process to close its store and stop; killed if it does not in time."""
        with self._lock:
            if self._process.is_alive():
                with contextlib.suppress(OSError):  # it stopped meanwhile
                    self._conn.send(("stop", ()))
            self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._conn.close()

    def __enter__(self) -> ModelProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            try:
                self._conn.send((name, args))
            except OSError as error:
                raise self._gone() from error
            status, value = self._receive()
        if status != "ok":
            raise ModelProcessError(str(value))
        return value

    def _receive(self) -> Any:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as error:
            raise self._gone() from error

    def _gone(self) -> ModelProcessError:
        self._process.join(5)
        return ModelProcessError(
            f"the model process stopped (exit code {self._process.exitcode}); restart omni-rag serve"
        )


def _serve_calls(conn: Connection, factory: Callable[[], OmniRetriever], max_batch: int) -> None:
    """The model process: build the retriever, then answer calls until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        retriever = factory()
    except BaseException as error:  # the HTTP process reports it and exits
        conn.send(_failure(error))
        return
    try:
        answerer = Answerer(retriever, max_batch)
        conn.send(_Started(answerer.collection, answerer.model_id))
        while True:
            try:
                name, args = conn.recv()
            except EOFError:  # the HTTP process is gone
                return
            if name not in _CALLS:
                return
            conn.send(_run(answerer, name, args))
    finally:
        retriever.store.close()


def _run(answerer: Answerer, name: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        return "ok", getattr(answerer, name)(*args)
    except Exception as error:
        logger.error("model process: %s failed", name, exc_info=error)
        return "error", f"{name} failed: {type(error).__name__}: {error}"


def _failure(error: BaseException) -> _Failed:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        traceback.print_exception(error)
        message = f"{type(error).__name__}: {error}"
    return _Failed(message, int(code) if isinstance(code, int) else None)
