"""Decode audio from any container with PyAV, matching ``librosa.load(path, sr=16000)``.

qwen_omni_utils reads audio with ``librosa.load``, which needs libsndfile (no mp4/mkv/webm)
or an ffmpeg binary (absent here). PyAV bundles FFmpeg, so we decode with it and then do
exactly what librosa does after reading: float samples at the native rate, cut at
``int(offset * sr)`` / ``int(duration * sr)``, mean over channels, ``soxr_hq`` resample.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Iterator
from fractions import Fraction
from pathlib import Path

import av
import librosa
import numpy as np
import torch

from omni_rag.errors import MediaError
from omni_rag.media.fetch import local_file

SAMPLE_RATE = 16000
RESAMPLE_TYPE = "soxr_hq"
# Decode this much before a seek target: compressed codecs (AAC, Opus, MP3) need a few frames
# of pre-roll before their output is sample-exact, and some demuxers seek only approximately.
_PREROLL_S = 0.5

AudioSource = str | os.PathLike[str] | np.ndarray | torch.Tensor

_FAST_PROBE = {"probesize": "65536"}
_INT_SCALE = {"s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """(channels, n) float32 with the same scaling libsndfile uses (int / 2**(bits-1))."""
    arr = frame.to_ndarray()
    name = frame.format.name
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    base = name.rstrip("p")
    if base in _INT_SCALE:
        return (arr.astype(np.float32) / np.float32(_INT_SCALE[base])).astype(np.float32)
    if base == "u8":
        return ((arr.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    return arr.astype(np.float32, copy=False)


def _to_mono(x: np.ndarray) -> np.ndarray:
    # librosa.to_mono is np.mean over the channel axis in float32: a row-by-row sum, then a
    # division by the count; done explicitly because np.mean's strided reduce is 10x slower.
    if x.shape[0] == 1:
        return x[0]
    acc = x[0].copy()
    for row in x[1:]:
        acc += row
    return acc / np.float32(x.shape[0])


def _resample(native: np.ndarray, sample_rate: int) -> np.ndarray:
    out = librosa.resample(native, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type=RESAMPLE_TYPE)
    return np.ascontiguousarray(out, dtype=np.float32)


class _AudioTrack:
    """An opened container and its audio stream; decodes mono float32 chunks at the native rate.

    Sample positions count from the stream's first sample (``stream.start_time``), which is
    what a decode from the beginning counts, so a window read after seeking lines up with the
    same window cut from a full decode. Positions after a seek come from the first decoded
    frame's timestamp, exact when the stream time base is at least the sample rate (wav, flac,
    mp3, ogg, mp4/m4a) and within half a tick otherwise (Matroska/WebM: 1 ms).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # FFmpeg's default 5 MB probe decodes ahead just to fill in stream parameters (~50 ms
        # for a short wav, 3x librosa's whole load); a small probe suffices for files whose
        # header describes the audio, and anything it leaves incomplete is reopened in full.
        container, stream = self._open(_FAST_PROBE)
        if stream is None or not stream.codec_context.sample_rate or not stream.codec_context.channels:
            container.close()
            container, stream = self._open(None)
        self.container = container
        if stream is None:
            container.close()
            raise MediaError("no audio track")
        self.stream: av.AudioStream = stream
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            container.close()
            raise MediaError("audio track has no sample rate")
        self.sample_rate = int(rate)
        self.time_base = stream.time_base or Fraction(1, self.sample_rate)
        self.origin = stream.start_time or 0

    def _open(
        self, options: dict[str, str] | None
    ) -> tuple[av.container.InputContainer, av.AudioStream | None]:
        try:
            container = av.open(str(self.path), metadata_errors="ignore", options=options)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise MediaError(f"cannot open media file {self.path.name}: {e}") from e
        try:
            stream = container.streams.best("audio")
        except (av.FFmpegError, ValueError):
            stream = None
        return container, stream if isinstance(stream, av.AudioStream) else None

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> _AudioTrack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chunks(self, start_sample: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(position, mono chunk)`` in order; the first chunk starts at or before ``start_sample``."""
        stream = self.stream
        seek_s = start_sample / self.sample_rate - _PREROLL_S
        if seek_s > 0:
            try:
                self.container.seek(
                    self.origin + int(seek_s / self.time_base),
                    stream=stream,
                    backward=True,
                    any_frame=False,
                )
            except av.FFmpegError:
                yield from self._reopened().chunks(0)
                return
            first = self._decode(seeked=True)
            head = next(first, None)
            if head is None or head[0] > start_sample:  # demuxer overshot: decode from the start instead
                first.close()
                yield from self._reopened().chunks(0)
                return
            yield head
            yield from first
        else:
            yield from self._decode(seeked=False)

    def _reopened(self) -> _AudioTrack:
        self.close()
        fresh = _AudioTrack(self.path)
        self.container, self.stream = fresh.container, fresh.stream
        return fresh

    def _decode(self, *, seeked: bool) -> Generator[tuple[int, np.ndarray], None, None]:
        pos: int | None = None if seeked else 0
        try:
            for packet in self.container.demux(self.stream):
                for frame in self.stream.decode(packet):
                    if frame.sample_rate != self.sample_rate:
                        raise MediaError(
                            f"sample rate changes mid-stream ({self.sample_rate} -> {frame.sample_rate})"
                        )
                    chunk = _to_mono(_frame_to_float(frame))
                    if pos is None:
                        if frame.pts is None:
                            raise MediaError("cannot seek: audio frames carry no timestamps")
                        pos = round((frame.pts - self.origin) * self.time_base * self.sample_rate)
                    yield pos, chunk
                    pos += chunk.shape[0]
        except av.FFmpegError as e:
            where = "" if pos is None else f" at {pos / self.sample_rate:.2f} s"
            raise MediaError(f"audio decode failed{where}: {e}") from e

    def declared_seconds(self) -> float | None:
        """The length the file's header declares (a WAV's data size, a container's duration)."""
        wav = _wav_declared_seconds(self.path)
        if wav is not None:  # FFmpeg derives a WAV's duration from the file size, not the header
            return wav
        if self.stream.duration:
            return float(self.stream.duration * self.time_base)
        if self.container.duration:
            return float(self.container.duration / av.time_base)
        return None

    def check_complete(self, decoded_to_s: float, end_s: float | None) -> None:
        """Raise when decoding stopped well before what the header declares: a truncated file.

        The tolerance (5%, at least half a second) absorbs estimated durations (VBR mp3).
        """
        declared = self.declared_seconds()
        if declared is None:
            return
        expected = declared if end_s is None else min(declared, end_s)
        if decoded_to_s < expected - max(0.5, 0.05 * expected):
            raise MediaError(
                f"truncated audio: the file declares {declared:.2f} s but only {decoded_to_s:.2f} s decode"
            )

    def read(self, start: int, count: int | None) -> np.ndarray:
        """Native-rate mono samples ``[start, start + count)`` (to the end when ``count`` is None)."""
        parts: list[np.ndarray] = []
        stop = math.inf if count is None else start + count
        for pos, chunk in self.chunks(start):
            end = pos + chunk.shape[0]
            if end <= start:
                continue
            parts.append(chunk[max(0, start - pos) : int(min(end, stop)) - pos])
            if end >= stop:
                break
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _wav_declared_seconds(path: Path) -> float | None:
    """Seconds of audio a RIFF/WAVE header declares (its ``data`` chunk size), or ``None``."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, rate, align = 12, 0, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 20 <= len(head):
            rate = int.from_bytes(head[pos + 12 : pos + 16], "little")
            align = int.from_bytes(head[pos + 20 : pos + 22], "little")
        elif chunk == b"data":
            return size / (rate * align) if rate and align and size < 0xFFFFFFFF else None
        pos += 8 + size + (size & 1)
    return None


def _check_waveform(x: np.ndarray | torch.Tensor) -> np.ndarray:
    dtype = str(x.dtype).removeprefix("torch.")
    if x.ndim != 1:
        if x.ndim == 2:
            raise MediaError(
                f"stereo/multi-channel waveform: pass a 1-D mono array at {SAMPLE_RATE} Hz, "
                f"got shape {tuple(x.shape)}"
            )
        raise MediaError(f"expected a 1-D mono waveform at {SAMPLE_RATE} Hz, got shape {tuple(x.shape)}")
    is_float = x.is_floating_point() if isinstance(x, torch.Tensor) else np.issubdtype(x.dtype, np.floating)
    if not is_float:
        raise MediaError(f"non-float waveform ({dtype}): pass float samples in [-1, 1] at {SAMPLE_RATE} Hz")
    arr = (x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else x).astype(
        np.float32, copy=False
    )
    if arr.size == 0:
        raise MediaError("empty waveform")
    if not np.isfinite(arr).all():
        raise MediaError("waveform contains NaN or inf")
    return arr


def _check_range(start_s: float | None, end_s: float | None) -> None:
    if start_s is not None and (not math.isfinite(start_s) or start_s < 0):
        raise MediaError(f"start_s must be a finite number >= 0, got {start_s}")
    if end_s is not None and not (end_s > (start_s or 0.0)):
        raise MediaError(f"end_s must be greater than start_s ({start_s or 0.0}), got {end_s}")


def _native_span(start_s: float | None, end_s: float | None, sample_rate: int) -> tuple[int, int | None]:
    # librosa.load(offset=start, duration=end - start) through soundfile: seek(int(offset * sr)),
    # read(int(duration * sr)).
    start = 0.0 if start_s is None else start_s
    first = int(start * sample_rate)
    return first, None if end_s is None else int((end_s - start) * sample_rate)


def load_audio(src: AudioSource, *, start_s: float | None = None, end_s: float | None = None) -> np.ndarray:
    """Return mono float32 samples at 16 kHz, as ``librosa.load(src, sr=16000, offset=, duration=)``.

    Args:
        src: Path or URL of any container with an audio track (wav, flac, mp3, ogg, m4a, mp4,
            mkv, webm, ...), or a 1-D float waveform already at 16 kHz (numpy or torch).
        start_s: Window start in seconds; files are seeked, not decoded from the beginning.
        end_s: Window end in seconds (clipped to the track).

    Raises:
        MediaError: no audio track, undecodable file, bad array, or an empty window.
    """
    _check_range(start_s, end_s)
    if isinstance(src, np.ndarray | torch.Tensor):
        wave = _check_waveform(src)
        out = _slice_array(wave, start_s, end_s)
        if out.size == 0:
            raise MediaError(
                f"audio window [{start_s}, {end_s}) s is empty; waveform is {wave.size / SAMPLE_RATE:.2f} s"
            )
        return out
    if not isinstance(src, str | os.PathLike):
        raise MediaError(f"unsupported audio type {type(src).__name__}")
    with local_file(src) as path, _AudioTrack(path) as track:
        first, count = _native_span(start_s, end_s, track.sample_rate)
        native = track.read(first, count)
        if native.size == 0:
            raise MediaError(
                "audio track is empty"
                if start_s is None
                else f"audio window starting at {start_s} s is empty"
            )
        track.check_complete((first + native.size) / track.sample_rate, end_s)
        return _resample(native, track.sample_rate)


def iter_audio_windows(
    src: AudioSource, window_s: float, hop_s: float
) -> Iterator[tuple[float, float, np.ndarray]]:
    """Yield ``(start_s, end_s, samples)`` windows at ``k * hop_s``, decoding the file once.

    Each window's samples equal ``load_audio(src, start_s=start_s, end_s=end_s)``: the native-rate
    range is cut exactly like ``load_audio`` cuts it and resampled on its own (no padding), so a
    segment embeds the same whether it came from here or from a direct load. Only about one
    window of native-rate audio is held at a time. The last window is clipped to the track and
    windows stop once one reaches the end.

    Raises:
        MediaError: bad window/hop, or anything :func:`load_audio` raises.
    """
    if not (window_s > 0 and hop_s > 0 and math.isfinite(window_s) and math.isfinite(hop_s)):
        raise MediaError(f"window_s and hop_s must be positive, got {window_s} and {hop_s}")
    if isinstance(src, np.ndarray | torch.Tensor):
        wave = _check_waveform(src)
        yield from _windows_of_array(wave, window_s, hop_s)
        return
    if not isinstance(src, str | os.PathLike):
        raise MediaError(f"unsupported audio type {type(src).__name__}")
    with local_file(src) as path, _AudioTrack(path) as track:
        sr = track.sample_rate
        buf = np.zeros(0, dtype=np.float32)
        buf_start = 0  # sample position of buf[0]
        k = 0
        for _, chunk in track.chunks(0):
            buf = np.concatenate([buf, chunk])
            while True:
                s = k * hop_s
                first, count = _native_span(s, s + window_s, sr)
                assert count is not None
                if first + count > buf_start + buf.shape[0]:
                    break
                native = buf[first - buf_start : first - buf_start + count]
                yield s, s + window_s, _resample(native, sr)
                k += 1
                next_first = int(k * hop_s * sr)
                drop = max(0, min(next_first - buf_start, buf.shape[0]))
                buf, buf_start = buf[drop:], buf_start + drop
        total = buf_start + buf.shape[0]
        duration = total / sr
        if k > 0 and (k - 1) * hop_s + window_s >= duration:
            return
        while (s := k * hop_s) < duration:
            e = min(s + window_s, duration)
            first, count = _native_span(s, e, sr)
            assert count is not None
            native = buf[max(0, first - buf_start) : first - buf_start + count]
            if native.size == 0:
                return
            yield s, e, _resample(native, sr)
            if s + window_s >= duration:
                return
            k += 1


def _slice_array(wave: np.ndarray, start_s: float | None, end_s: float | None) -> np.ndarray:
    # qwen_omni_utils slices arrays at int(SR * start) : int(SR * end).
    stop = None if end_s is None else int(SAMPLE_RATE * end_s)
    return np.ascontiguousarray(wave[int(SAMPLE_RATE * (start_s or 0.0)) : stop])


def _windows_of_array(
    wave: np.ndarray, window_s: float, hop_s: float
) -> Iterator[tuple[float, float, np.ndarray]]:
    duration = wave.shape[0] / SAMPLE_RATE
    k = 0
    while (s := k * hop_s) < duration:
        e = min(s + window_s, duration)
        yield s, e, _slice_array(wave, s, e)
        if s + window_s >= duration:
            return
        k += 1
