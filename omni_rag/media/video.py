"""Decode video with PyAV into exactly the tensor ``qwen_omni_utils.fetch_video`` returns.

qwen's own path-reader is ``torchvision.io.read_video``, gone from torchvision 0.29, and it
decoded *every* frame of the window into memory before keeping a few. Here the sampling
arithmetic is qwen's (``smart_nframes`` and its ``linspace`` indices over the frames whose
timestamps fall in ``[video_start, video_end]``, torchvision's rules for that window), but
only the sampled frames are decoded: timestamps come from demuxing (no decoding), and the
decoder seeks to the keyframe before each sample when one lies ahead. The resize is not
reimplemented: the decoded frames are handed to qwen's ``fetch_video`` itself.

With ``video_start``/``video_end`` only the packets around the window are demuxed (seek to a
keyframe before the start, stop once timestamps are safely past the end), so indexing a long
video window by window does not re-read the whole file per window; the timeline that results
is, over the window, the one a whole-file demux gives (see :func:`_demux_window`).
"""

from __future__ import annotations

import bisect
import contextlib
import io
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image
from qwen_omni_utils.v2_5 import vision_process

from omni_rag.errors import MediaError
from omni_rag.media.fetch import local_file

VideoSource = str | os.PathLike[str] | np.ndarray | torch.Tensor

#: The keys of a qwen_omni_utils video element that :func:`load_video` passes through.
VIDEO_OPTIONS = frozenset(
    {
        "fps",
        "nframes",
        "min_frames",
        "max_frames",
        "min_pixels",
        "max_pixels",
        "total_pixels",
        "video_start",
        "video_end",
        "resized_height",
        "resized_width",
        "sample_fps",
        "raw_fps",
    }
)

_DECODED_KEY = "_omni_rag_decoded"
_hook_lock = threading.Lock()

ReaderResult = tuple[torch.Tensor, dict[str, Any], float]


@dataclass(frozen=True)
class DecodedVideo:
    """Frames ready for the model plus what is needed to place them in time.

    Attributes:
        frames: ``fetch_video``'s output: float32 ``(T, C, H, W)`` in [0, 255] after its bicubic resize.
        sample_fps: Rate of the sampled frames, the ``fps`` the processor is told.
        video_fps: Source frame rate (``raw_fps``/``sample_fps`` for frame arrays).
        total_frames: Source frames in the ``[video_start, video_end]`` window (all frames for arrays).
        frame_indices: Index of each sampled frame within that window.
        timestamps_s: Presentation time of each sampled frame (``None`` for arrays).
        duration_s: Source duration when the container knows it.
        decoded_frames: Frames the decoder produced to get the samples (cost diagnostic; 0 for arrays).
        demuxed_packets: Video packets read to build the timeline (cost diagnostic; 0 for arrays).
    """

    frames: torch.Tensor
    sample_fps: float
    video_fps: float
    total_frames: int
    frame_indices: tuple[int, ...]
    timestamps_s: tuple[float, ...] | None = None
    duration_s: float | None = None
    decoded_frames: int = 0
    demuxed_packets: int = 0


# --------------------------------------------------------------------------- hooking fetch_video

_BANNER = re.compile(r"qwen-vl-utils using \w+ to read video\.\s*$")


def _hooked(reader: Callable[[dict[str, Any]], ReaderResult]) -> Callable[[dict[str, Any]], ReaderResult]:
    def read(ele: dict[str, Any]) -> ReaderResult:
        decoded: ReaderResult | None = ele.get(_DECODED_KEY)
        return decoded if decoded is not None else reader(ele)

    read._omni_rag_hook = True  # type: ignore[attr-defined]
    return read


def _install_hook() -> None:
    """Wrap every qwen reader backend so an element carrying our pre-decoded frames skips decoding.

    ``fetch_video`` only resizes what a backend returns, so feeding it our frames through its
    own dispatch reuses its resize/pixel-budget code unchanged. Elements without the private
    key go to the original backend, so other callers of qwen are unaffected and nothing needs
    a global lock or a forced backend (``get_video_reader_backend`` is cached, so flipping
    ``FORCE_QWENVL_VIDEO_READER`` would not even take effect after the first call).
    """
    backends = vision_process.VIDEO_READER_BACKENDS
    with _hook_lock:
        for name, reader in list(backends.items()):
            if not getattr(reader, "_omni_rag_hook", False):
                backends[name] = _hooked(reader)
        _choose_backend_quietly()


def _choose_backend_quietly() -> None:
    """Let qwen pick its reader backend now, without its ``qwen-vl-utils using ...`` banner.

    ``get_video_reader_backend`` prints that line to stderr on its first call and is cached, so
    calling it once here with stderr captured silences every later embed; the backend only
    resizes our frames, so the choice means nothing to the user. Anything else it prints (a
    real error) is passed on to stderr.
    """
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        vision_process.get_video_reader_backend()
    rest = [line for line in captured.getvalue().splitlines(True) if not _BANNER.match(line)]
    if rest:
        sys.stderr.write("".join(rest))


def _qwen_fetch_video(ele: dict[str, Any], image_patch_size: int) -> tuple[torch.Tensor, float]:
    try:
        frames, sample_fps = vision_process.fetch_video(
            ele, image_patch_size=image_patch_size, return_video_sample_fps=True
        )
    except (ValueError, AssertionError) as e:  # smart_resize / smart_nframes limits
        raise MediaError(f"qwen fetch_video rejected the video: {e}") from e
    return frames, float(sample_fps)


# --------------------------------------------------------------------------- options


def _check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = dict(options or {})
    unknown = sorted(set(opts) - VIDEO_OPTIONS)
    if unknown:
        raise MediaError(f"unknown video option(s) {unknown}; expected some of {sorted(VIDEO_OPTIONS)}")
    if "fps" in opts and "nframes" in opts:
        raise MediaError("pass either 'fps' or 'nframes' in video options, not both")
    start, end = opts.get("video_start"), opts.get("video_end")
    if start is not None and not (math.isfinite(start) and start >= 0):
        raise MediaError(f"video_start must be a finite number >= 0, got {start}")
    if end is not None and not end >= (start or 0.0):
        raise MediaError(f"video_end ({end}) must not be before video_start ({start or 0.0})")
    return opts


def _nframes(opts: Mapping[str, Any], total_frames: int, video_fps: float) -> int:
    try:
        return int(vision_process.smart_nframes(dict(opts), total_frames=total_frames, video_fps=video_fps))
    except (ValueError, AssertionError) as e:
        raise MediaError(f"cannot sample {total_frames} frame(s) from this video window: {e}") from e


# --------------------------------------------------------------------------- arrays


def _frames_from_array(video: np.ndarray | torch.Tensor) -> list[Image.Image]:
    dtype = str(video.dtype).removeprefix("torch.")
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[3] != 3 or video.dtype != np.uint8:
            raise MediaError(f"expected (T, H, W, 3) uint8 frame array, got shape {video.shape} {dtype}")
        hwc = video
    else:
        if video.ndim != 4 or video.shape[1] != 3 or video.dtype != torch.uint8:
            raise MediaError(
                f"expected (T, 3, H, W) uint8 frame tensor, got shape {tuple(video.shape)} {dtype}"
            )
        hwc = video.detach().cpu().permute(0, 2, 3, 1).numpy()
    if hwc.shape[0] == 0:
        raise MediaError("frame array has no frames (T == 0)")
    if hwc.shape[1] == 0 or hwc.shape[2] == 0:
        raise MediaError(f"frame array has empty frames, got shape {tuple(video.shape)}")
    return [Image.fromarray(np.ascontiguousarray(frame)) for frame in hwc]


def _load_array(
    video: np.ndarray | torch.Tensor, opts: dict[str, Any], image_patch_size: int
) -> DecodedVideo:
    frames = _frames_from_array(video)
    # What a model-card user passing a list of frames gets: qwen resizes each frame with
    # fetch_image, pads to an even count, and reports sample_fps = ele.get("sample_fps", 2.0).
    out, sample_fps = _qwen_fetch_video({**opts, "video": frames}, image_patch_size)
    n = len(frames)
    return DecodedVideo(
        frames=out,
        sample_fps=sample_fps,
        video_fps=float(opts.get("raw_fps", sample_fps)),
        total_frames=n,
        frame_indices=tuple(min(i, n - 1) for i in range(out.shape[0])),
    )


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class _Timeline:
    """Presentation timestamps (stream time base) of every frame and of the keyframes, sorted.

    Seeks target a keyframe's pts: both the MP4 and Matroska demuxers index by pts, and a
    demuxer that lands elsewhere is caught by the missing-sample check in :func:`_decode_sampled`.
    """

    pts: list[int]
    keyframes: list[int]


def _video_stream(container: av.container.InputContainer) -> av.VideoStream:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError("no video track")


@dataclass
class _DemuxStats:
    packets: int = 0


#: Windowed demuxing (False: always demux the whole file, the reference path tests compare to).
_WINDOWED_DEMUX = True
#: Past ``video_end``, how far (seconds, and at least this many frame durations) decode
#: timestamps must go before demuxing stops: covers B-frame reordering and guessed dts.
_REORDER_MARGIN_S = 2.0
_REORDER_MARGIN_FRAMES = 32
#: Packets still read after a keyframe past ``video_end`` (+margin) when dts cannot tell.
_REORDER_PACKETS = 32
#: Seeks tried (each further back) before demuxing the window from the file's start.
_SEEK_TRIES = 6


def _demux_timeline(
    container: av.container.InputContainer, stream: av.VideoStream, stats: _DemuxStats
) -> _Timeline | None:
    """Timestamps from packets alone, or None when packets lack them and decoding must tell.

    ``stream.frames`` is not used: it is 0 for Matroska/WebM, counts the whole file rather
    than a window, and gives no timestamps to seek to, while demuxing reads every packet
    header but decodes nothing (a small fraction of decoding cost).
    """
    pts: set[int] = set()
    keyframes: set[int] = set()
    for packet in container.demux(stream):
        if packet.size == 0:  # end-of-stream flush packet
            continue
        stats.packets += 1
        if packet.pts is None:
            return None
        pts.add(packet.pts)
        if packet.is_keyframe:
            keyframes.add(packet.pts)
    return _Timeline(sorted(pts), sorted(keyframes))


def _window_offsets(opts: Mapping[str, Any], time_base: Fraction) -> tuple[int, float]:
    """``[video_start, video_end]`` in stream ticks, rounded outward as torchvision does."""
    start = opts.get("video_start") or 0.0
    end = opts.get("video_end")
    start_offset = math.floor(start * (1 / time_base))
    end_offset = math.inf if end is None else math.ceil(end * (1 / time_base))
    return start_offset, end_offset


def _demux_from(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    *,
    seeked: bool,
    key_before: float,
    stop_after: float,
    stats: _DemuxStats,
) -> tuple[int | None, set[int], set[int]] | None:
    """Demux from the current position until timestamps are safely past ``stop_after`` (ticks).

    Returns the pts of the first keyframe read (None if none), every pts and the keyframe pts
    read, or None when a packet has no pts. After a seek, packets before the first keyframe
    are dropped: they precede it in decode order, hence (a keyframe, an IDR/IRAP picture,
    follows everything decoded before it in output order) in time. So from the first keyframe
    on every pts at or after it is read, plus maybe a few earlier leading pictures (open GOP)
    that callers must ignore. If that keyframe is not before ``key_before`` reading stops there.

    Demuxing stops at the first packet whose dts is past ``stop_after`` (dts never decreases
    and pts >= dts, so no later packet can be inside; ``stop_after`` carries a reorder margin
    for guessed dts), or, where dts is missing, ``_REORDER_PACKETS`` packets after a keyframe
    past ``stop_after`` (a keyframe's leading pictures follow it closely in decode order).
    """
    first_key: int | None = None
    pts: set[int] = set()
    keyframes: set[int] = set()
    tail: int | None = None
    for packet in container.demux(stream):
        if packet.size == 0:  # end-of-stream flush packet
            continue
        stats.packets += 1
        p = packet.pts
        if p is None:
            return None
        if packet.is_keyframe and first_key is None:
            first_key = p
            if seeked and p >= key_before:
                break
        if first_key is None and seeked:
            continue
        pts.add(p)
        if packet.is_keyframe:
            keyframes.add(p)
            if tail is None and p > stop_after:
                tail = 0
        if packet.dts is not None and packet.dts > stop_after:
            break
        if tail is not None:
            tail += 1
            if tail > _REORDER_PACKETS:
                break
    return first_key, pts, keyframes


def _demux_window(
    path: Path,
    container: av.container.InputContainer,
    stream: av.VideoStream,
    opts: Mapping[str, Any],
    video_fps: float,
    stats: _DemuxStats,
) -> _Timeline | None:
    """The timeline around the ``video_start``/``video_end`` window, or None to demux the whole file.

    Over what :func:`_window` and :func:`_decode_sampled` look at it equals the whole-file
    timeline: every pts from the keyframe ``K`` the seek lands on to past the window's end
    (see :func:`_demux_from`), with ``K`` strictly before ``video_start`` so that the last frame
    before the start (torchvision keeps it) is in, and the keyframes from ``K`` on (every sample
    is at or after ``K``, so its last keyframe is among them); earlier pts are dropped. When
    the seek lands at or after the start (dts-indexed seeking, sparse cues) it is retried
    further back, and at last the window is demuxed from the file's start with no seek.
    """
    time_base = stream.time_base
    assert time_base is not None
    start_offset, end_offset = _window_offsets(opts, time_base)
    margin = math.ceil(max(_REORDER_MARGIN_S, _REORDER_MARGIN_FRAMES / video_fps) / time_base)
    stop_after = end_offset + margin
    origin = stream.start_time if stream.start_time is not None else 0
    target, back = start_offset - 1, margin
    seeked = False
    try:
        for _ in range(_SEEK_TRIES):
            if target <= origin:
                break
            container.seek(target, stream=stream, backward=True, any_frame=False)
            seeked = True
            found = _demux_from(
                container, stream, seeked=True, key_before=start_offset, stop_after=stop_after, stats=stats
            )
            if found is None:
                return None
            key, pts, keyframes = found
            if key is not None and key < start_offset:
                return _Timeline(sorted(p for p in pts if p >= key), sorted(k for k in keyframes if k >= key))
            target, back = target - back, back * 4
        # From the file's start, nothing skipped (a fresh container if this one was moved).
        with _open(path) if seeked else contextlib.nullcontext(container) as source:
            found = _demux_from(
                source,
                _video_stream(source),
                seeked=False,
                key_before=start_offset,
                stop_after=stop_after,
                stats=stats,
            )
    except av.FFmpegError:  # cannot seek (or read) here: let the whole-file path decide
        return None
    if found is None:
        return None
    _, pts, keyframes = found
    return _Timeline(sorted(pts), sorted(keyframes))


def _file_timeline(
    path: Path,
    container: av.container.InputContainer,
    stream: av.VideoStream,
    opts: Mapping[str, Any],
    video_fps: float,
    stats: _DemuxStats,
) -> _Timeline | None:
    """Timeline from packets (windowed when the options give a window), None when pts are missing."""
    windowed = (opts.get("video_start") or 0.0) > 0 or opts.get("video_end") is not None
    if not (_WINDOWED_DEMUX and windowed):
        return _demux_timeline(container, stream, stats)
    timeline = _demux_window(path, container, stream, opts, video_fps, stats)
    if timeline is not None:
        return timeline
    with _open(path) as fresh:  # the windowed attempt moved the first container: start over
        return _demux_timeline(fresh, _video_stream(fresh), stats)


def _decode_timeline(path: Path) -> _Timeline:
    """Timestamps by decoding every frame (and dropping it): the slow, always-right fallback."""
    with _open(path) as container:
        stream = _video_stream(container)
        pts: set[int] = set()
        for i, frame in enumerate(_decode(container, stream)):
            pts.add(frame.pts if frame.pts is not None else i)
    return _Timeline(sorted(pts), [])


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(f"cannot open media file {path.name}: {e}") from e


def _decode(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.VideoFrame]:
    try:
        for packet in container.demux(stream):
            yield from packet.decode()
    except av.FFmpegError as e:
        raise MediaError(f"video decode failed: {e}") from e


def _window(timeline: list[int], opts: Mapping[str, Any], time_base: Fraction) -> list[int]:
    """The pts ``torchvision.io.read_video(start_pts, end_pts, pts_unit="sec")`` would return."""
    start_offset, end_offset = _window_offsets(opts, time_base)
    lo = bisect.bisect_left(timeline, start_offset)
    hi = bisect.bisect_right(timeline, end_offset) if end_offset != math.inf else len(timeline)
    selected = timeline[lo:hi]
    # torchvision also returns the last frame before start_pts when none starts exactly there
    # (so the first returned frame covers the start time).
    if start_offset > 0 and lo > 0 and (lo == len(timeline) or timeline[lo] != start_offset):
        selected.insert(0, timeline[lo - 1])
    return selected


def _check_starts_inside(
    pts: Sequence[int], opts: Mapping[str, Any], time_base: Fraction, video_fps: float, duration: float | None
) -> None:
    """A window that starts at or after the last frame has ended holds no frame of the video."""
    start = float(opts.get("video_start") or 0.0)
    if not pts or start <= 0:
        return
    ends = float(pts[-1] * time_base) + 1.0 / video_fps
    length = min(ends, duration) if duration else ends
    if start >= length - 1e-9:
        raise MediaError(f"the window starts after the video ends ({length:.1f} s); video_start={start:g} s")


def _decode_sampled(
    path: Path, wanted: list[int], timeline: _Timeline, *, seek: bool
) -> tuple[dict[int, np.ndarray] | None, int]:
    """RGB frames for the ``wanted`` pts (None if seeking skipped one) and the number of frames decoded.

    With ``seek`` the decoder jumps to the last keyframe at or before the next sample whenever
    that keyframe is past everything decoded so far, i.e. whenever seeking saves decoding;
    otherwise it decodes forward, converting only the sampled frames.
    """
    wanted_set = set(wanted)
    got: dict[int, np.ndarray] = {}
    decoded = 0
    with _open(path) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        frames: Iterator[av.VideoFrame] | None = None
        last = -math.inf  # largest pts decoded since the last seek
        for target in wanted:
            if target in got:
                continue
            k = bisect.bisect_right(timeline.keyframes, target) - 1
            keyframe = timeline.keyframes[k] if seek and k >= 0 else None
            if frames is None or (keyframe is not None and keyframe > last):
                if keyframe is not None:
                    container.seek(keyframe, stream=stream, backward=True, any_frame=False)
                    last = -math.inf
                frames = _decode(container, stream)
            for frame in frames:
                decoded += 1
                pts = frame.pts
                if pts is None:
                    continue
                last = max(last, pts)
                if pts in wanted_set and pts not in got:
                    got[pts] = frame.to_rgb().to_ndarray()
                if pts >= target:
                    break
            if target not in got:
                return None, decoded
    return got, decoded


def _read_file(path: Path, opts: dict[str, Any]) -> tuple[ReaderResult, DecodedVideo]:
    with _open(path) as container:
        if container.format.name.endswith("_pipe") or container.format.name == "image2":
            raise MediaError(f"not a video: {path.name} is a still image (pass it as image=)")
        stream = _video_stream(container)
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise MediaError("video track has no frame rate")
        video_fps = float(rate)
        time_base = stream.time_base
        if time_base is None:
            raise MediaError("video track has no time base")
        duration = container.duration / av.time_base if container.duration else None
        stats = _DemuxStats()
        try:
            timeline = _file_timeline(path, container, stream, opts, video_fps, stats)
        except av.FFmpegError as e:
            raise MediaError(f"cannot read video packets: {e}") from e
    if timeline is None:
        timeline = _decode_timeline(path)
    _check_starts_inside(timeline.pts, opts, time_base, video_fps, duration)
    window = _window(timeline.pts, opts, time_base)
    total = len(window)
    if total == 0:
        raise MediaError(
            f"no video frames between video_start={opts.get('video_start', 0.0)} "
            f"and video_end={opts.get('video_end')} s (duration {duration} s)"
        )
    nframes = _nframes(opts, total, video_fps)
    idx = torch.linspace(0, total - 1, nframes).round().long()
    wanted = [window[i] for i in idx.tolist()]
    got, decoded = _decode_sampled(path, wanted, timeline, seek=bool(timeline.keyframes))
    if got is None:  # a seek landed past a sample (odd index / open GOP): decode forward instead
        got, more = _decode_sampled(path, wanted, timeline, seek=False)
        decoded += more
    if got is None:
        raise MediaError("video ended before all sampled frames were decoded (truncated file?)")
    shapes = {got[p].shape for p in wanted}
    if len(shapes) != 1:
        raise MediaError(f"frame size changes within the video: {sorted(shapes)}")
    video = torch.from_numpy(np.stack([got[p] for p in wanted])).permute(0, 3, 1, 2)
    sample_fps = nframes / max(total, 1e-6) * video_fps
    metadata = {
        "fps": video_fps,
        "frames_indices": idx,
        "total_num_frames": total,
        "video_backend": "omni_rag_pyav",
    }
    info = DecodedVideo(
        frames=video,
        sample_fps=sample_fps,
        video_fps=video_fps,
        total_frames=total,
        frame_indices=tuple(idx.tolist()),
        timestamps_s=tuple(float(p * time_base) for p in wanted),
        duration_s=duration,
        decoded_frames=decoded,
        demuxed_packets=stats.packets,
    )
    return (video, metadata, sample_fps), info


def load_video(
    src: VideoSource, *, options: Mapping[str, Any] | None = None, image_patch_size: int = 14
) -> DecodedVideo:
    """Decode and sample a video exactly as ``qwen_omni_utils.fetch_video`` would with a working reader.

    Args:
        src: Path or URL of a video file, a ``(T, H, W, 3)`` uint8 ndarray or a ``(T, 3, H, W)``
            uint8 tensor. Arrays go through ``fetch_video`` as a list of frames, like a card user's
            frames do: qwen then ignores ``fps``/``nframes`` and keeps every frame.
        options: qwen video element keys (see :data:`VIDEO_OPTIONS`): ``fps`` (default 2),
            ``nframes``, ``min_frames``, ``max_frames``, ``min_pixels``, ``max_pixels``,
            ``total_pixels``, ``video_start``, ``video_end``.
        image_patch_size: Passed to ``fetch_video`` (14 for Qwen2.5-Omni).

    Raises:
        MediaError: bad options or array, missing/undecodable file, no video track, or a window
            too short for qwen's minimum of 2 frames.
    """
    opts = _check_options(options)
    if isinstance(src, np.ndarray | torch.Tensor):
        return _load_array(src, opts, image_patch_size)
    if not isinstance(src, str | os.PathLike):
        raise MediaError(f"unsupported video type {type(src).__name__}")
    _install_hook()
    with local_file(src) as path:
        decoded, info = _read_file(path, opts)
        frames, sample_fps = _qwen_fetch_video(
            {**opts, "video": str(path), _DECODED_KEY: decoded}, image_patch_size
        )
    return DecodedVideo(
        frames=frames,
        sample_fps=sample_fps,
        video_fps=info.video_fps,
        total_frames=info.total_frames,
        frame_indices=info.frame_indices,
        timestamps_s=info.timestamps_s,
        duration_s=info.duration_s,
        decoded_frames=info.decoded_frames,
        demuxed_packets=info.demuxed_packets,
    )
