"""Synthetic media for tests (ours and users' CI), written with PyAV: no fixture files, no network.

Every helper is a plain function (importable from any test module) that writes a small,
deterministic file. Content depends on ``seed`` / ``freq`` so two calls with different
arguments give different bytes and different decoded arrays, which is what lets tests catch
swapped items or wrong frame indices.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

# container extension -> (video codec, audio codec, pixel format)
_VIDEO_CODECS: dict[str, tuple[str, str, str]] = {
    ".mp4": ("libx264", "aac", "yuv420p"),
    ".mkv": ("libx264", "flac", "yuv420p"),
    ".webm": ("libvpx-vp9", "libopus", "yuv420p"),
    ".avi": ("mpeg4", "pcm_s16le", "yuv420p"),
}
# audio extension -> (container format, codec, sample format)
_AUDIO_CODECS: dict[str, tuple[str, str, str]] = {
    ".wav": ("wav", "pcm_s16le", "s16"),
    ".flac": ("flac", "flac", "s16"),
    ".mp3": ("mp3", "libmp3lame", "fltp"),
    ".ogg": ("ogg", "libopus", "flt"),
    ".m4a": ("ipod", "aac", "fltp"),
}
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


def tone(
    seconds: float, sample_rate: int, channels: int = 1, freq: float = 440.0, seed: int = 0
) -> np.ndarray:
    """Deterministic test signal, shape ``(channels, n)`` float32 in [-0.5, 0.5].

    Each channel gets a different frequency (and a little seeded noise) so a wrong downmix
    or a channel swap changes the result.
    """
    n = round(seconds * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(channels):
        f = freq * (1.0 + 0.5 * c) + 3.0 * seed
        sweep = 0.3 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * (f / 7.0) * t * (1 + t / 10))
        rows.append(sweep + 0.02 * rng.standard_normal(n))
    return np.clip(np.stack(rows), -0.5, 0.5).astype(np.float32)


def video_frame(index: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Frame ``index`` of the synthetic video: an HWC uint8 RGB image that changes every frame."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    img = np.empty((height, width, 3), dtype=np.float64)
    img[..., 0] = (base[0] + 2 * xx + 5 * index) % 256
    img[..., 1] = (base[1] + 3 * yy + 11 * index) % 256
    img[..., 2] = (base[2] + xx + yy) % 256
    bar = (index * 4) % width
    img[:, bar : bar + max(2, width // 16), :] = 255
    return img.astype(np.uint8)


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"


def _add_audio(
    container: av.container.OutputContainer, codec: str, rate: int, channels: int, sample_fmt: str
) -> av.AudioStream:
    stream = container.add_stream(codec, rate=rate)
    assert isinstance(stream, av.AudioStream)
    stream.codec_context.layout = _layout(channels)
    stream.codec_context.format = sample_fmt
    return stream


def _encode_audio(container: av.container.OutputContainer, stream: av.AudioStream, wave: np.ndarray) -> None:
    fmt = stream.codec_context.format.name
    layout = _layout(wave.shape[0])
    chunk = 4096
    for start in range(0, wave.shape[1], chunk):
        part = wave[:, start : start + chunk]
        if fmt.startswith("s16"):
            part = np.round(part * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            part = np.round(part * 2147483647).astype(np.int32)
        if not fmt.endswith("p"):  # packed formats take one interleaved row
            part = part.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=fmt, layout=layout)
        frame.sample_rate = stream.codec_context.sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, stream.codec_context.sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_audio(
    path: str | Path,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    *,
    freq: float = 440.0,
    seed: int = 0,
) -> Path:
    """Write an audio file whose codec follows the extension (.wav .flac .mp3 .ogg .m4a).

    Opus (.ogg) only supports some rates; another rate is silently replaced by 48 kHz.
    """
    path = Path(path)
    fmt, codec, sample_fmt = _AUDIO_CODECS[path.suffix.lower()]
    if codec == "libopus" and sample_rate not in _OPUS_RATES:
        sample_rate = 48000
    wave = tone(seconds, sample_rate, channels, freq, seed)
    with av.open(str(path), "w", format=fmt) as container:
        _encode_audio(container, _add_audio(container, codec, sample_rate, channels, sample_fmt), wave)
    return path


def make_video(
    path: str | Path,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    audio: bool = True,
    *,
    seed: int = 0,
    freq: float = 440.0,
    gop: int | None = None,
    audio_rate: int = 44100,
) -> Path:
    """Write a video (.mp4 h264+aac, .mkv h264+flac, .webm vp9+opus, .avi mpeg4+pcm).

    Args:
        size: (width, height), both even.
        gop: Keyframe interval in frames (default: the encoder's), small values make seeking matter.
    """
    path = Path(path)
    vcodec, acodec, pix_fmt = _VIDEO_CODECS[path.suffix.lower()]
    n_frames = round(seconds * fps)
    with av.open(str(path), "w") as container:
        vs = container.add_stream(vcodec, rate=fps)
        assert isinstance(vs, av.VideoStream)
        vs.width, vs.height = size
        vs.pix_fmt = pix_fmt
        if gop is not None:
            vs.codec_context.gop_size = gop
        if vcodec == "libx264":
            vs.options = {"preset": "veryfast", "crf": "18", **({"keyint": str(gop)} if gop else {})}
        elif vcodec.startswith("libvpx"):
            vs.options = {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0"}
        a_stream = None
        if audio:
            rate = audio_rate if acodec != "libopus" else 48000
            sample_fmt = {"aac": "fltp", "flac": "s16", "libopus": "flt"}.get(acodec, "s16")
            a_stream = _add_audio(container, acodec, rate, 2, sample_fmt)
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(video_frame(i, size, seed), format="rgb24")
            container.mux(vs.encode(frame))
        container.mux(vs.encode(None))
        if a_stream is not None:
            _encode_audio(
                container, a_stream, tone(seconds, a_stream.codec_context.sample_rate, 2, freq, seed)
            )
    return path


def make_image(
    path: str | Path, size: tuple[int, int] = (64, 48), *, seed: int = 0, mode: str = "RGB", frames: int = 1
) -> Path:
    """Write an image (format from the extension); ``frames > 1`` writes an animated GIF."""
    path = Path(path)
    images = [Image.fromarray(video_frame(i, size, seed)).convert(mode) for i in range(frames)]
    if mode == "RGBA":
        alpha = np.zeros((size[1], size[0]), dtype=np.uint8)
        alpha[:, : size[0] // 2] = 255
        images[0].putalpha(Image.fromarray(alpha))
    if frames > 1:
        images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    else:
        images[0].save(path)
    return path


def make_audio_with_cover(path: str | Path, seconds: float = 1.0, *, seed: int = 0) -> Path:
    """An MP3 with an embedded cover picture: must still probe as audio, not video."""
    path = Path(path)
    cover = io.BytesIO()
    Image.fromarray(video_frame(0, (32, 32), seed)).save(cover, format="PNG")
    with av.open(str(path), "w", format="mp3") as container:
        a_stream = _add_audio(container, "libmp3lame", 44100, 1, "fltp")
        pic = container.add_stream("png")
        assert isinstance(pic, av.VideoStream)
        pic.width, pic.height = 32, 32
        pic.pix_fmt = "rgb24"
        # an int: PyAV before 18 takes no Disposition member here
        pic.disposition = av.stream.Disposition.attached_pic.value  # type: ignore[assignment]
        packet = av.Packet(cover.getvalue())
        packet.stream = pic
        packet.pts = packet.dts = 0
        packet.is_keyframe = True
        container.mux(packet)
        _encode_audio(container, a_stream, tone(seconds, 44100, 1, 330.0, seed))
    return path


def make_corrupt(path: str | Path, *, seed: int = 0, truncate_from: str | Path | None = None) -> Path:
    """A file no decoder accepts: seeded random bytes, or the first 1/3 of ``truncate_from``."""
    path = Path(path)
    if truncate_from is not None:
        data = Path(truncate_from).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        rng = np.random.default_rng(seed)
        data = bytes(rng.integers(0, 256, size=4096, dtype=np.uint8))
        path.write_bytes(b"\x00\x01garbage" + data)
    return path
