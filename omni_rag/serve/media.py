"""Serving a point's source file, and poster frames of video segments, and nothing else.

The file served for ``/media/{point_id}`` comes from the point's payload in the collection,
never from the URL: the id is only a key. A source that no longer is a regular file in its
indexed folder (deleted, or replaced by a symlink that leads out of that folder) is treated
exactly like an unknown id, so a 404 tells a prober nothing about the file system.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from omni_rag.hits import hit_media
from omni_rag.store import Hit, OmniStore

#: Poster frames kept in memory (JPEG bytes, a few KB each).
POSTER_CACHE_SIZE = 512
#: Longest side of a poster frame, in pixels.
POSTER_SIZE = 480


@dataclass(frozen=True)
class MediaSource:
    """A point's servable file: where it is, its main modality and the segment it stands for."""

    path: Path
    modality: str
    start_s: float | None
    end_s: float | None


def servable_path(source: str) -> Path | None:
    """The file behind an indexed ``source``, or ``None`` when it must not be served.

    Refused: URLs and other non-paths, missing files, anything not a regular file, and a path
    whose real location is outside the folder it was indexed in (a symlink planted after
    indexing, or a folder on its way swapped for a link).
    """
    if not source or "://" in source or "\x00" in source:
        return None
    stated = Path(os.path.abspath(source))
    try:
        real = stated.resolve(strict=True)
        folder = stated.parent.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(folder) or not real.is_file():
        return None
    return real


def point_media(store: OmniStore, point_id: str) -> MediaSource | None:
    """The servable source of one stored point, or ``None`` (unknown id, no file, refused file)."""
    if not point_id or len(point_id) > 512:
        return None
    try:
        found = store.get([point_id])[0]
    except Exception:  # an id the store cannot even parse is just another unknown id
        return None
    if found is None:
        return None
    hit = Hit(id=found.id, score=0.0, payload=found.payload)
    return hit_source_file(hit)


def hit_source_file(hit: Hit, paths: SourceCache | None = None) -> MediaSource | None:
    """The servable source of a hit (see :func:`servable_path`); ``None`` for text or refused files.

    ``paths`` may answer from a few seconds ago (for links in a hit list); ``/media`` always checks.
    """
    media = hit_media(hit)
    if not media or hit.source is None:
        return None
    path = paths.servable(hit.source) if paths is not None else servable_path(hit.source)
    if path is None:
        return None
    modality = next(name for name in ("video", "audio", "image") if name in media)
    return MediaSource(path, modality, hit.payload.get("start_s"), hit.payload.get("end_s"))


class SourceCache:
    """:func:`servable_path` answers kept ``ttl_s`` seconds: a hit list names the same files again
    and again, and resolving each path costs about 0.1 ms of system calls."""

    def __init__(self, ttl_s: float = 5.0, size: int = 4096) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._paths: OrderedDict[str, tuple[float, Path | None]] = OrderedDict()
        self._lock = threading.Lock()

    def servable(self, source: str) -> Path | None:
        now = time.monotonic()
        with self._lock:
            known = self._paths.get(source)
        if known is not None and now - known[0] < self._ttl_s:
            return known[1]
        path = servable_path(source)
        with self._lock:
            self._paths[source] = (now, path)
            self._paths.move_to_end(source)
            while len(self._paths) > self._size:
                self._paths.popitem(last=False)
        return path


class PosterCache:
    """JPEG frames of videos at a time, extracted with PyAV once and kept (least recently used out)."""

    def __init__(self, size: int = POSTER_CACHE_SIZE) -> None:
        self._size = size
        self._frames: OrderedDict[tuple[str, int, float], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.extracted = 0

    def poster(self, path: Path, at_s: float) -> bytes | None:
        """The frame shown at ``at_s`` seconds (the last one before it), as JPEG; ``None`` if undecodable."""
        key = (str(path), path.stat().st_mtime_ns, round(at_s, 3))
        with self._lock:
            if key in self._frames:
                self._frames.move_to_end(key)
                return self._frames[key]
        frame = extract_frame(path, at_s)
        if frame is None:
            return None
        with self._lock:
            self.extracted += 1
            self._frames[key] = frame
            while len(self._frames) > self._size:
                self._frames.popitem(last=False)
        return frame


def extract_frame(path: Path, at_s: float) -> bytes | None:
    """Seek to the keyframe before ``at_s``, decode up to ``at_s``, encode that frame as JPEG."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if at_s > 0 and stream.time_base is not None:
                container.seek(int(at_s / stream.time_base), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                if chosen is not None and frame.time is not None and frame.time > at_s + 1e-3:
                    break
                chosen = frame
            if chosen is None:
                return None
            image = chosen.to_image()
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    image.thumbnail((POSTER_SIZE, POSTER_SIZE))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()
