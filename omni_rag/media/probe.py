"""Tell what a file holds (image, audio, video, text) from its content, not its extension.

The CLI uses this to pick which streams to embed for files of unknown origin, where
extensions lie (``.mp4`` audio-only exports, ``.mp3`` with cover art, ``.txt`` renamed media).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import av
import PIL.Image

from omni_rag.errors import MediaError
from omni_rag.media.fetch import local_file
from omni_rag.media.text import decode_text

MediaKind = Literal["image", "audio", "video", "text", "unknown"]
_TEXT_PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` found. Stream fields are ``None`` when the stream is absent or unknown.

    ``n_frames`` is the container's frame count; Matroska/WebM do not store one (``None``).
    """

    kind: MediaKind
    has_audio: bool = False
    has_video: bool = False
    duration_s: float | None = None
    video_fps: float | None = None
    n_frames: int | None = None
    width: int | None = None
    height: int | None = None
    audio_sample_rate: int | None = None


def _probe_image(path: os.PathLike[str]) -> MediaInfo | None:
    try:
        with PIL.Image.open(path) as img:
            # Animated images (GIF, APNG, WebP) are still "image": the embedder uses the first
            # frame, as qwen's fetch_image does.
            n = getattr(img, "n_frames", 1)
            return MediaInfo(kind="image", has_video=False, width=img.width, height=img.height, n_frames=n)
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError):
        return None


def _is_text(path: os.PathLike[str]) -> bool:
    with open(path, "rb") as f:
        head = f.read(_TEXT_PROBE_BYTES)
    if not head:
        return False
    try:
        decode_text(head, partial=True)  # tolerates a multi-byte character cut by the probe
    except MediaError:
        return False
    return True


def _probe_av(path: os.PathLike[str]) -> MediaInfo | None:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None
    with container:
        videos = [
            s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
        ]
        audios = list(container.streams.audio)
        if not videos and not audios:
            return None
        duration = container.duration / av.time_base if container.duration else None
        sample_rate = (audios[0].codec_context.sample_rate or audios[0].rate) if audios else None
        if not videos:
            return MediaInfo(kind="audio", has_audio=True, duration_s=duration, audio_sample_rate=sample_rate)
        video = videos[0]
        # FFmpeg opens still images too (png_pipe, image2...) as a one-frame "video".
        still = container.format.name.endswith("_pipe") or container.format.name == "image2"
        rate = video.average_rate or video.guessed_rate
        return MediaInfo(
            kind="image" if still and not audios else "video",
            has_video=not still,
            video_fps=float(rate) if rate and not still else None,
            n_frames=video.frames or None,
            width=video.codec_context.width or None,
            height=video.codec_context.height or None,
            has_audio=bool(audios),
            duration_s=duration,
            audio_sample_rate=sample_rate,
        )


def probe(src: str | os.PathLike[str]) -> MediaInfo:
    """Classify ``src`` (path or URL) by content.

    Order matters: PIL first (FFmpeg also opens images), then UTF-8 text (FFmpeg's ``tty``
    demuxer would happily call a text file a video), then PyAV. A video stream flagged as an
    attached picture (cover art in mp3/m4a) does not make a file a video.

    Raises:
        MediaError: missing file or failed download (an unreadable file is ``kind="unknown"``).
    """
    with local_file(src) as path:
        if path.stat().st_size == 0:
            return MediaInfo(kind="unknown")
        image = _probe_image(path)
        if image is not None:
            return image
        if _is_text(path):
            return MediaInfo(kind="text")
        media = _probe_av(path)
        return media if media is not None else MediaInfo(kind="unknown")
