"""``omni-rag serve``'s model in a process of its own: an embedder called over a pipe.

In one process, the HTTP side (parsing requests), the store search and the forward pass's Python
take turns on one GIL, so under load a server used about one core. :class:`EmbedderProcess`
moves the model out: the server keeps the store and searches one micro-batch while the model
process embeds the next (:class:`~omni_rag.serve.batching.QueryBatcher` keeps two in flight).

It stands in for an :class:`~omni_rag.OmniEmbedder` wherever one is taken (``OmniRetriever``,
the model check): the same embedding methods, ``model_id``, ``revision`` and ``dim``. The model
process is spawned (never forked from a process that may hold CUDA or threads) and loads the
model itself, so the model is loaded once. It ignores Ctrl-C (which reaches the whole process
group) and stops when told to, or when the server is gone, even killed with SIGKILL: its pipe
then reads end-of-file.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder

logger = logging.getLogger(__name__)

#: The embedder's methods the model process answers.
_CALLS = frozenset({"embed_queries", "embed_documents", "embed_document_streams"})
#: Seconds the model process gets to stop when asked to.
STOP_TIMEOUT_S = 60.0


class ModelProcessError(RuntimeError):
    """The model process could not start, or has stopped.

    Attributes:
        code: The exit status a start-up failure asks for (a CLI error's), else ``None``.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Started:
    model_id: str
    revision: str | None
    dim: int


@dataclass(frozen=True)
class _Failed:
    message: str
    code: int | None


class EmbedderProcess:
    """An embedder in a spawned process, one call at a time.

    Args:
        factory: Builds the embedder in the new process (picklable: a module-level function, or
            a ``functools.partial`` of one). An error it raises with ``message`` and ``code``
            attributes (the CLI's) keeps them.

    Raises:
        ModelProcessError: the embedder could not be built (its reason and exit status).
    """

    def __init__(self, factory: Callable[[], OmniEmbedder]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_calls, args=(child, factory), name="omni-rag-model")
        self._process.daemon = True
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        started = self._receive()
        if isinstance(started, _Failed):
            self._process.join(STOP_TIMEOUT_S)
            raise ModelProcessError(started.message, started.code)
        self.model_id = started.model_id
        self.revision = started.revision
        self.dim = started.dim

    def embed_queries(self, items: Any, **options: Any) -> Any:
        """:meth:`OmniEmbedder.embed_queries`, in the model process."""
        return self._call("embed_queries", list(items), options)

    def embed_documents(self, items: Any, **options: Any) -> Any:
        """:meth:`OmniEmbedder.embed_documents`, in the model process."""
        return self._call("embed_documents", list(items), options)

    def embed_document_streams(self, items: Any, **options: Any) -> Any:
        """:meth:`OmniEmbedder.embed_document_streams`, in the model process."""
        return self._call("embed_document_streams", list(items), options)

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        """Ask the model process to stop; killed if it does not in time."""
        with self._lock:
            if self._process.is_alive():
                with contextlib.suppress(OSError):  # it stopped meanwhile
                    self._conn.send(("stop", [], {}))
            self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._conn.close()

    def __enter__(self) -> EmbedderProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, name: str, items: list[Any], options: dict[str, Any]) -> Any:
        with self._lock:
            try:
                self._conn.send((name, items, options))
            except OSError as error:
                raise self._gone() from error
            status, value = self._receive()
        if status == "raise":
            raise value
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


def _serve_calls(conn: Connection, factory: Callable[[], OmniEmbedder]) -> None:
    """The model process: build the embedder, then answer calls until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        embedder = factory()
    except BaseException as error:  # the server reports it and exits
        conn.send(_failure(error))
        return
    conn.send(_Started(str(embedder.model_id), embedder.revision, int(embedder.dim)))
    while True:
        try:
            name, items, options = conn.recv()
        except EOFError:  # the server is gone
            return
        if name not in _CALLS:
            return
        conn.send(_run(embedder, name, items, options))


def _run(embedder: OmniEmbedder, name: str, items: list[Any], options: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", getattr(embedder, name)(items, **options)
    except Exception as error:
        return "raise", _portable(error)


def _portable(error: Exception) -> Exception:
    """The error itself when it survives pickling (omni-rag's input errors do), else its words."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        logger.error("model process: %s", error, exc_info=error)
        return ModelProcessError(f"the model failed: {type(error).__name__}: {error}")
    return error


def _failure(error: BaseException) -> _Failed:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        traceback.print_exception(error)
        message = f"{type(error).__name__}: {error}"
    return _Failed(message, int(code) if isinstance(code, int) else None)
