"""Turn a media reference (path, ``file://``, ``http(s)://``, ``data:`` URI) into a local file.

Decoders (PIL, PyAV) want a seekable local file; downloading first, with a size cap and a
deadline, keeps one huge or stalled URL from hanging or filling the disk of a batch job.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from omni_rag.errors import MediaError

DEFAULT_MAX_BYTES = 2 * 1024**3
_CHUNK = 1 << 20


def is_url(src: str) -> bool:
    """True for the string forms :func:`local_file` downloads rather than opens."""
    return src.startswith(("http://", "https://"))


def _suffix_of(url_path: str) -> str:
    suffix = Path(urllib.parse.unquote(url_path)).suffix
    return suffix if 0 < len(suffix) <= 8 else ""


def fetch_url(url: str, *, timeout: float = 30.0, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Download ``url`` to a temporary file the caller owns (and must delete).

    ``timeout`` bounds both each socket operation and the whole transfer, since a server that
    trickles bytes never trips a per-read timeout. ``file://`` URLs return the local path itself
    (nothing is copied, so the caller must not delete it; use :func:`local_file` to get that right).

    Raises:
        MediaError: bad scheme, HTTP/network error, timeout, or more than ``max_bytes``.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return _existing_file(urllib.request.url2pathname(parsed.path))
    if parsed.scheme not in ("http", "https"):
        raise MediaError(f"unsupported URL scheme {parsed.scheme!r} in {url!r}")
    deadline = time.monotonic() + timeout
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise MediaError(f"HTTP {e.code} {e.reason} fetching {url}") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise MediaError(f"cannot fetch {url}: {reason}") from e
    with response:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise MediaError(f"{url} is {int(length)} bytes, over the {max_bytes}-byte limit")
        fd, name = tempfile.mkstemp(prefix="omni_rag_", suffix=_suffix_of(parsed.path))
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                size = 0
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaError(f"{url} exceeds the {max_bytes}-byte limit")
                    if time.monotonic() > deadline:
                        raise MediaError(f"timed out after {timeout:g} s fetching {url}")
                    out.write(chunk)
        except MediaError:
            path.unlink(missing_ok=True)
            raise
        except (OSError, ValueError) as e:  # socket timeout mid-body, connection reset
            path.unlink(missing_ok=True)
            raise MediaError(f"cannot fetch {url}: {e}") from e
    return path


def _existing_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise MediaError(f"file not found: {p}")
    if p.is_dir():
        raise MediaError(f"is a directory, not a media file: {p}")
    return p


def _data_uri_to_file(uri: str) -> Path:
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise MediaError("only base64 data: URIs are supported (data:<mime>;base64,<payload>)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MediaError(f"invalid base64 payload in data: URI: {e}") from e
    fd, name = tempfile.mkstemp(prefix="omni_rag_")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


@contextlib.contextmanager
def local_file(
    src: str | os.PathLike[str], *, timeout: float = 30.0, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[Path]:
    """Yield a local path for ``src``, deleting it afterwards only if it was a download.

    Raises:
        MediaError: missing file, directory, or a failed download.
    """
    if isinstance(src, str):
        if is_url(src):
            path = fetch_url(src, timeout=timeout, max_bytes=max_bytes)
            try:
                yield path
            finally:
                path.unlink(missing_ok=True)
            return
        if src.startswith("data:"):
            path = _data_uri_to_file(src)
            try:
                yield path
            finally:
                path.unlink(missing_ok=True)
            return
        if src.startswith("file://"):
            yield fetch_url(src)
            return
    yield _existing_file(src)
