"""Search an embedded store while another process writes it: the writer serves reads.

Qdrant Edge opens a shard in one process at a time (its write-ahead log is locked), and it can
neither write a snapshot another process could open nor open segments read-only. So the process
holding a collection answers the others: next to the lock it listens on a Unix socket
(``edge/<collection>.sock``, owner-only, authenticated by a key in ``edge/<collection>.key`` that
only the owner can read) and runs their read calls on its own shard, which holds every point it
acknowledged. A second ``OmniStore(path=...)`` then opens as a reader (:class:`ServedEngine`):
searches, counts and reads work; writes are refused with :class:`StoreLockedError`.

If the writer dies (even by kill -9), the OS releases its lock: the reader's next call finds the
socket dead, takes the lock and opens the shard itself (Edge replays the log: nothing acknowledged
is lost), and goes on as an ordinary embedded store.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from omni_rag.store.engine import Engine
from omni_rag.store.errors import StoreLockedError

logger = logging.getLogger(__name__)

#: Engine calls a reader may make; the rest write.
READS = frozenset(
    {
        "exists",
        "vectors",
        "get_metadata",
        "retrieve",
        "count",
        "stream_sets",
        "nearest",
        "fused",
        "scroll",
        "collections",
        "index_info",
    }
)


#: Longest Unix socket path the OS takes (``sun_path`` is 108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100


def _paths(root: Path, collection: str) -> tuple[Path, Path]:
    """The socket (in the store folder, or in the temp folder when that path is too long) and key."""
    edge = root / "edge"
    socket = edge / f"{collection}.sock"
    if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(os.fsencode(socket.resolve())).hexdigest()[:24]
        socket = Path(tempfile.gettempdir()) / f"omni-rag-{digest}.sock"
    return socket, edge / f"{collection}.key"


def serve_reads(engine: Engine, root: Path, lock: threading.RLock) -> ReadServer | None:
    """Serve ``engine``'s reads to other processes; ``None`` (logged) where the OS refuses a socket."""
    try:
        return ReadServer(engine, root, lock)
    except OSError as error:
        logger.warning("other processes cannot search %s while this one holds it: %s", root, error)
        return None


class ReadServer:
    """Answers other processes' read calls on ``engine`` until :meth:`close`."""

    def __init__(self, engine: Engine, root: Path, lock: threading.RLock) -> None:
        self._engine = engine
        self._lock = lock
        self._socket, key_path = _paths(root, engine.collection)
        key = secrets.token_bytes(32)
        self._socket.unlink(missing_ok=True)  # left by a process that was killed
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        self._closed = False
        self._listener = Listener(str(self._socket), family="AF_UNIX", authkey=key)
        os.chmod(self._socket, 0o600)
        self._thread = threading.Thread(target=self._accept, name="omni-rag-read-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except OSError:  # closed
                return
            except Exception:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    name, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                answer = self._call(name, args, kwargs)
                if answer is None:  # the holder closed the store: the reader sees it gone
                    return
                conn.send(answer)

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any] | None:
        """(ok, result or error) of one call; ``None`` once the store is closed here."""
        if name not in READS:
            return False, StoreLockedError(f"{name} is a write; a reader cannot do it")
        try:
            with self._lock:
                if self._closed:
                    return None
                return True, getattr(self._engine, name)(*args, **kwargs)
        except Exception as error:
            return False, error

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()  # unlinks the socket


class ServedEngine:
    """A reader of a collection another process holds: its read calls run in that process.

    Writes raise :class:`StoreLockedError`. When the holder is gone, the first call that finds it
    gone opens the collection here (``take_over``) and every later call runs on that engine.
    """

    def __init__(
        self, collection: str, root: Path, conn: Connection, take_over: Callable[[], Engine], message: str
    ) -> None:
        self.collection = collection
        self._root = root
        self._conn: Connection | None = conn
        self._take_over = take_over
        self._local: Engine | None = None
        self._message = message

    @classmethod
    def connect(
        cls, collection: str, root: Path, take_over: Callable[[], Engine], message: str
    ) -> ServedEngine | None:
        """A reader of the process holding the collection, or ``None`` if it serves none."""
        socket, key_path = _paths(root, collection)
        try:
            conn = Client(str(socket), family="AF_UNIX", authkey=key_path.read_bytes())
        except (OSError, EOFError, ValueError):
            return None
        except Exception:
            return None
        return cls(collection, root, conn, take_over, message)

    @property
    def taken_over(self) -> bool:
        """Whether the holder is gone and this process opened the collection itself."""
        return self._local is not None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._local is not None:
                return getattr(self._local, name)(*args, **kwargs)
            if name not in READS:
                raise StoreLockedError(self._message)
            try:
                assert self._conn is not None
                self._conn.send((name, args, kwargs))
                ok, value = self._conn.recv()
            except (EOFError, OSError):
                self._conn = None
                self._holder_gone()
                return call(*args, **kwargs)
            if not ok:
                raise value
            return value

        return call

    def _holder_gone(self) -> None:
        """Open the collection here (its lock is free), or read through whoever holds it now."""
        try:
            self._local = self._take_over()
        except StoreLockedError:
            again = ServedEngine.connect(self.collection, self._root, self._take_over, self._message)
            if again is None:
                raise
            self._conn, again._conn = again._conn, None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._local is not None:
            self._local.close()


def served_or_raise(
    collection: str, root: Path, locked: StoreLockedError, take_over: Callable[[], Engine]
) -> ServedEngine:
    """A reader served by the holder of a locked collection; ``locked`` again if it serves none."""
    message = (
        f"the store at {root} is being written by another process (collection {collection!r}); this "
        "process opened it to search, which works while that one writes, but cannot write. Write "
        "through that process or after it ends, or use a Qdrant server (--url) for many writers."
    )
    engine = ServedEngine.connect(collection, root, take_over, message)
    if engine is None:
        raise locked
    return engine
