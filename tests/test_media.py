"""Tests for omni_rag.media: parity with librosa / qwen_omni_utils, error reasons, URLs, probing."""

from __future__ import annotations

import base64
import http.server
import math
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import librosa
import numpy as np
import PIL.Image
import pytest
import torch
from qwen_omni_utils.v2_5 import vision_process
from qwen_omni_utils.v2_5.vision_process import fetch_video, smart_nframes, smart_resize, to_rgb
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as tvf

from omni_rag.errors import MediaError
from omni_rag.media import (
    SAMPLE_RATE,
    DecodedVideo,
    fetch_url,
    iter_audio_windows,
    load_audio,
    load_image,
    load_video,
    probe,
)
from omni_rag.media import video as video_module
from omni_rag.testing.media import (
    make_audio,
    make_audio_with_cover,
    make_corrupt,
    make_image,
    make_video,
    tone,
    video_frame,
)

# --------------------------------------------------------------------------- helpers


def reference_video(path: Path, ele: dict) -> tuple[torch.Tensor, float]:
    """Brute force: decode every frame, apply torchvision's window + qwen's sampling and resize."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames: dict[int, np.ndarray] = {}
        for f in container.decode(stream):
            assert f.pts is not None
            frames[f.pts] = f.to_rgb().to_ndarray()
        tb, rate = stream.time_base, stream.average_rate
        assert tb is not None and rate is not None
        fps = float(rate)
    start_off = math.floor(ele.get("video_start", 0.0) * (1 / tb))
    end = ele.get("video_end")
    end_off = math.inf if end is None else math.ceil(end * (1 / tb))
    keys = sorted(frames)
    sel = [k for k in keys if start_off <= k <= end_off]
    if start_off > 0 and start_off not in frames and any(k < start_off for k in keys):
        sel.insert(0, max(k for k in keys if k < start_off))
    total = len(sel)
    n = smart_nframes(ele, total, fps)
    idx = torch.linspace(0, total - 1, n).round().long()
    video = torch.from_numpy(np.stack([frames[sel[i]] for i in idx.tolist()])).permute(0, 3, 1, 2)
    factor = 28
    min_px = ele.get("min_pixels", 128 * factor * factor)
    total_px = ele.get("total_pixels", 128000 * factor * factor * 0.9)
    max_px = max(min(768 * factor * factor, total_px / n * 2), int(min_px * 1.05))
    max_px = min(ele.get("max_pixels", max_px), max_px)
    h, w = smart_resize(video.shape[2], video.shape[3], factor=factor, min_pixels=min_px, max_pixels=max_px)
    out = tvf.resize(video, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    return out, n / total * fps


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/stream":  # no Content-Length: the size cap must trip while streaming
            self.send_response(200)
            self.end_headers()
            for _ in range(8):
                self.wfile.write(b"x" * 4096)
            return
        if self.path == "/slow":
            time.sleep(1.5)
            self.send_response(200)
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- audio: files


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [("m16.wav", 16000, 1), ("s44.wav", 44100, 2), ("s44.flac", 44100, 2), ("s48.mp3", 48000, 2)],
)
def test_load_audio_equals_librosa(tmp_path: Path, name: str, rate: int, channels: int) -> None:
    path = make_audio(tmp_path / name, 3.0, rate, channels, seed=1)
    ours = load_audio(path)
    ref = librosa.load(path, sr=SAMPLE_RATE, mono=True)[0]
    assert ours.dtype == np.float32 and ours.ndim == 1
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)
    # A window (seeked, not decoded from the start) equals librosa's offset/duration cut.
    win = load_audio(path, start_s=1.3, end_s=2.2)
    ref_win = librosa.load(path, sr=SAMPLE_RATE, mono=True, offset=1.3, duration=2.2 - 1.3)[0]
    assert win.shape == ref_win.shape
    np.testing.assert_allclose(win, ref_win, atol=1e-6, rtol=0)
    tail = load_audio(path, start_s=2.5)
    ref_tail = librosa.load(path, sr=SAMPLE_RATE, mono=True, offset=2.5)[0]
    np.testing.assert_allclose(tail, ref_tail, atol=1e-6, rtol=0)


def test_load_audio_window_equals_librosa_for_opus(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.ogg", 3.0, 48000, 2)
    np.testing.assert_allclose(
        load_audio(path, start_s=1.3, end_s=2.2),
        librosa.load(path, sr=SAMPLE_RATE, offset=1.3, duration=0.9)[0],
        atol=1e-6,
        rtol=0,
    )


@pytest.mark.parametrize("name", ["a.m4a", "a.ogg", "v.mp4", "v.mkv", "v.webm"])
def test_load_audio_from_any_container(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.startswith("v."):
        make_video(path, seconds=2.0, audio=True, freq=500.0, audio_rate=44100)
        rate = 48000 if name.endswith(".webm") else 44100
    else:
        make_audio(path, 2.0, 44100, 2, freq=500.0)
        rate = 48000 if name.endswith(".ogg") else 44100
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - 2 * SAMPLE_RATE) <= 0.05 * SAMPLE_RATE
    # The decoded content is the encoded tone (lossy codecs: compare by correlation).
    expected = librosa.resample(tone(2.0, rate, 2, 500.0).mean(axis=0), orig_sr=rate, target_sr=SAMPLE_RATE)
    n = min(out.size, expected.size)
    assert np.corrcoef(out[:n], expected[:n])[0, 1] > 0.95


def test_load_audio_m4a_window_close_to_full_decode(tmp_path: Path) -> None:
    # AAC is not sample-exact after a seek (the decoder's noise substitution has state),
    # but the window must be the same stretch of audio.
    path = make_audio(tmp_path / "a.m4a", 4.0, 44100, 2)
    win = load_audio(path, start_s=2.0, end_s=3.0)
    full = load_audio(path)[2 * SAMPLE_RATE : 3 * SAMPLE_RATE]
    assert win.shape == (SAMPLE_RATE,)
    assert np.corrcoef(win, full)[0, 1] > 0.99


def test_load_audio_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no audio track"):
        load_audio(make_video(tmp_path / "silent.mp4", audio=False))
    with pytest.raises(MediaError, match="cannot open media file"):
        load_audio(make_corrupt(tmp_path / "bad.wav"))
    with pytest.raises(MediaError, match="file not found"):
        load_audio(tmp_path / "missing.wav")
    wav = make_audio(tmp_path / "a.wav", 1.0)
    with pytest.raises(MediaError, match="end_s must be greater"):
        load_audio(wav, start_s=0.5, end_s=0.5)
    with pytest.raises(MediaError, match="start_s must be"):
        load_audio(wav, start_s=-1.0)
    with pytest.raises(MediaError, match="empty"):
        load_audio(wav, start_s=5.0)
    with pytest.raises(MediaError, match="unsupported audio type"):
        load_audio(123)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- audio: arrays


def test_load_audio_arrays() -> None:
    wave = np.linspace(-0.5, 0.5, 32000)
    out = load_audio(wave)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, wave.astype(np.float32))
    np.testing.assert_array_equal(load_audio(torch.from_numpy(wave)), wave.astype(np.float32))
    cut = load_audio(wave, start_s=0.5, end_s=1.0)
    np.testing.assert_array_equal(cut, wave[8000:16000].astype(np.float32))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (np.zeros((2, 1600), np.float32), r"stereo/multi-channel waveform: .* got shape \(2, 1600\)"),
        (torch.zeros(1600, 2), r"stereo/multi-channel waveform: .* got shape \(1600, 2\)"),
        (np.zeros(1600, np.int16), r"non-float waveform \(int16\)"),
        (torch.zeros(1600, dtype=torch.int32), r"non-float waveform \(int32\)"),
        (np.zeros(0, np.float32), "empty waveform"),
        (np.array([0.0, np.nan], np.float32), "NaN or inf"),
        (np.array([0.0, np.inf]), "NaN or inf"),
        (np.zeros((1, 2, 3), np.float32), r"expected a 1-D mono waveform .* shape \(1, 2, 3\)"),
    ],
)
def test_load_audio_rejects_bad_arrays(bad: np.ndarray | torch.Tensor, reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        load_audio(bad)


# --------------------------------------------------------------------------- audio: windows


def test_iter_audio_windows_cover_file_and_match_load_audio(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "long.wav", 60.0, 44100, 2, seed=3)
    windows = list(iter_audio_windows(path, 10.0, 10.0))
    assert [(s, e) for s, e, _ in windows] == [(10.0 * k, 10.0 * k + 10.0) for k in range(6)]
    full = load_audio(path)
    joined = np.concatenate([w for *_, w in windows])
    assert joined.shape == full.shape
    # Each window is resampled on its own: only ~100 samples at each border see the edge.
    for k in range(6):
        a, b = k * 10 * SAMPLE_RATE + 200, (k + 1) * 10 * SAMPLE_RATE - 200
        np.testing.assert_allclose(joined[a:b], full[a:b], atol=1e-5, rtol=0)
    for s, e, w in windows[:2] + windows[-1:]:
        np.testing.assert_array_equal(w, load_audio(path, start_s=s, end_s=e))


def test_iter_audio_windows_overlap_and_clipped_tail(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.flac", 7.0, 22050, 1)
    windows = list(iter_audio_windows(path, 3.0, 2.0))
    assert [(s, e) for s, e, _ in windows] == [(0.0, 3.0), (2.0, 5.0), (4.0, 7.0)]
    assert [w.size for *_, w in windows] == [48000, 48000, 48000]
    windows = list(iter_audio_windows(path, 4.0, 4.0))
    assert [(s, e) for s, e, _ in windows] == [(0.0, 4.0), (4.0, 7.0)]
    for s, e, w in windows:
        np.testing.assert_array_equal(w, load_audio(path, start_s=s, end_s=e))


def test_iter_audio_windows_arrays_and_errors() -> None:
    wave = np.arange(50000, dtype=np.float32) / 50000
    windows = list(iter_audio_windows(wave, 1.0, 1.0))
    assert [(s, e) for s, e, _ in windows] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 50000 / 16000)]
    np.testing.assert_array_equal(np.concatenate([w for *_, w in windows]), wave)
    with pytest.raises(MediaError, match="must be positive"):
        next(iter_audio_windows(wave, 0.0, 1.0))


# --------------------------------------------------------------------------- video: files


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {
        ext: make_video(root / f"v{ext}", seconds=6.0, fps=10, size=(64, 48), gop=7, seed=2)
        for ext in (".mp4", ".mkv", ".webm")
    }


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm"])
@pytest.mark.parametrize(
    "options",
    [{}, {"video_start": 1.05, "video_end": 4.0}, {"nframes": 8}, {"fps": 5, "video_start": 2.0}],
    ids=["default", "window", "nframes", "fps-start"],
)
def test_load_video_equals_bruteforce_reference(videos: dict[str, Path], ext: str, options: dict) -> None:
    path = videos[ext]
    out = load_video(path, options=options)
    ref, ref_fps = reference_video(path, options)
    assert out.frames.dtype == torch.float32
    assert out.frames.shape == ref.shape
    torch.testing.assert_close(out.frames, ref, atol=1e-4, rtol=0)
    assert out.sample_fps == pytest.approx(ref_fps)
    assert out.video_fps == 10.0
    assert len(out.frame_indices) == out.frames.shape[0]


def test_load_video_decodes_only_what_it_samples(tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mp4", seconds=30.0, fps=10, size=(64, 48), audio=False, gop=10)
    out = load_video(path, options={"nframes": 4})
    assert out.total_frames == 300
    assert out.frame_indices == (0, 100, 199, 299)
    assert out.timestamps_s == pytest.approx((0.0, 10.0, 19.9, 29.9))
    assert out.decoded_frames <= 4 * 10 + 8  # at most a GOP per sample (+ decoder delay)
    ref, _ = reference_video(path, {"nframes": 4})
    torch.testing.assert_close(out.frames, ref, atol=1e-4, rtol=0)


def test_load_video_short_and_too_short(tmp_path: Path) -> None:
    out = load_video(make_video(tmp_path / "three.mp4", seconds=0.3, fps=10, audio=False))
    assert out.total_frames == 3 and out.frames.shape[0] == 2  # qwen's minimum, clipped to the frames
    with pytest.raises(MediaError, match=r"cannot sample 1 frame\(s\)"):
        load_video(make_video(tmp_path / "one.mp4", seconds=0.1, fps=10, audio=False))


def test_load_video_without_audio_track(tmp_path: Path) -> None:
    path = make_video(tmp_path / "silent.mkv", seconds=2.0, audio=False)
    out = load_video(path)
    assert out.frames.shape[0] == 4 and out.total_frames == 20
    assert out.duration_s == pytest.approx(2.0, abs=0.05)


def test_load_video_errors(tmp_path: Path) -> None:
    good = make_video(tmp_path / "v.mp4", seconds=2.0, audio=False)
    with pytest.raises(MediaError, match="cannot open media file"):
        load_video(make_corrupt(tmp_path / "bad.mp4"))
    with pytest.raises(MediaError, match="cannot open media file"):
        load_video(make_corrupt(tmp_path / "trunc.mp4", truncate_from=good))
    with pytest.raises(MediaError, match="file not found"):
        load_video(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="no video track"):
        load_video(make_audio(tmp_path / "a.wav"))
    with pytest.raises(MediaError, match="no video track"):
        load_video(make_audio_with_cover(tmp_path / "cover.mp3"))
    # Past the end: said so, not "cannot sample 1 frame(s)" from torchvision's keep-the-last-frame rule.
    with pytest.raises(MediaError, match=r"the window starts after the video ends \(2.0 s\)"):
        load_video(good, options={"video_start": 10.0})
    with pytest.raises(MediaError, match=r"unknown video option\(s\) \['fsp'\]"):
        load_video(good, options={"fsp": 2})
    with pytest.raises(MediaError, match="either 'fps' or 'nframes'"):
        load_video(good, options={"fps": 2, "nframes": 4})
    with pytest.raises(MediaError, match="must not be before video_start"):
        load_video(good, options={"video_start": 1.5, "video_end": 1.0})


def test_hook_leaves_other_fetch_video_callers_alone(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", seconds=1.0, audio=False)
    load_video(path)  # installs the hook
    # An element without our pre-decoded frames goes to qwen's real reader, which fails here
    # because torchvision 0.29 has no io.read_video: proof the hook did not answer for it.
    with pytest.raises(AttributeError, match="read_video"):
        vision_process.VIDEO_READER_BACKENDS["torchvision"]({"video": str(path)})


# --------------------------------------------------------------------------- video: arrays


def test_load_video_arrays_equal_fetch_video_on_frames() -> None:
    frames = np.stack([video_frame(i, (64, 48), seed=5) for i in range(5)])
    out = load_video(frames, options={"max_pixels": 128 * 28 * 28})
    ref = fetch_video({"video": [PIL.Image.fromarray(f) for f in frames], "max_pixels": 128 * 28 * 28})
    assert out.frames.shape == ref.shape == (6, 3, ref.shape[2], ref.shape[3])  # padded to even
    torch.testing.assert_close(out.frames, ref, atol=0, rtol=0)
    assert out.sample_fps == 2.0 and out.total_frames == 5 and out.frame_indices[-1] == 4
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)
    tensor_out = load_video(tensor, options={"max_pixels": 128 * 28 * 28})
    torch.testing.assert_close(tensor_out.frames, out.frames, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (np.zeros((0, 8, 8, 3), np.uint8), r"no frames \(T == 0\)"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"expected \(T, H, W, 3\) uint8 .* \(2, 8, 8, 4\) uint8"),
        (np.zeros((8, 8, 3), np.uint8), r"expected \(T, H, W, 3\) uint8 .* \(8, 8, 3\)"),
        (np.zeros((2, 8, 8, 3), np.float32), r"expected \(T, H, W, 3\) uint8 .* float32"),
        (torch.zeros(2, 8, 8, 3, dtype=torch.uint8), r"expected \(T, 3, H, W\) uint8 .* \(2, 8, 8, 3\)"),
        (torch.zeros(2, 3, 8, 8), r"expected \(T, 3, H, W\) uint8 .* float32"),
    ],
)
def test_load_video_rejects_bad_arrays(bad: np.ndarray | torch.Tensor, reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        load_video(bad)


# --------------------------------------------------------------------------- images


def test_load_image_sources_agree(tmp_path: Path) -> None:
    path = make_image(tmp_path / "i.png", (200, 30), seed=4)
    expected = np.asarray(PIL.Image.open(path).convert("RGB"))
    for src in (path, str(path), f"file://{path}", PIL.Image.open(path), expected):
        img = load_image(src)
        assert img.mode == "RGB" and img.size == (200, 30)  # not resized
        np.testing.assert_array_equal(np.asarray(img), expected)
    chw = torch.from_numpy(expected.copy()).permute(2, 0, 1)
    np.testing.assert_array_equal(np.asarray(load_image(chw)), expected)
    data_uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    np.testing.assert_array_equal(np.asarray(load_image(data_uri)), expected)


def test_load_image_alpha_gray_and_animation(tmp_path: Path) -> None:
    rgba_path = make_image(tmp_path / "a.png", mode="RGBA")
    img = load_image(rgba_path)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(to_rgb(PIL.Image.open(rgba_path))))
    assert np.asarray(img)[:, -1].min() == 255  # transparent half flattened onto white
    rgba = np.asarray(PIL.Image.open(rgba_path))
    np.testing.assert_array_equal(np.asarray(load_image(rgba)), np.asarray(img))
    gray = np.arange(48 * 64, dtype=np.uint8).reshape(48, 64)
    out = np.asarray(load_image(gray))
    assert out.shape == (48, 64, 3) and (out[..., 0] == gray).all() and (out[..., 2] == gray).all()
    gif = load_image(make_image(tmp_path / "g.gif", frames=3))
    assert gif.mode == "RGB" and gif.size == (64, 48)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (np.zeros((3, 64, 64), np.float32), r"expected HWC uint8 array .* got shape \(3, 64, 64\) float32"),
        (np.zeros((8, 8, 2), np.uint8), r"got shape \(8, 8, 2\) uint8"),
        (np.zeros((0, 8, 3), np.uint8), "empty image array"),
        (torch.rand(3, 8, 8), r"CHW uint8 tensor .* float32; convert float images"),
        (torch.zeros(8, 8, 3, dtype=torch.uint8), r"got shape \(8, 8, 3\) uint8"),
        (42, "unsupported image type int"),
    ],
)
def test_load_image_rejects_bad_input(bad: object, reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        load_image(bad)  # type: ignore[arg-type]


def test_load_image_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="file not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(MediaError, match="cannot decode image"):
        load_image(make_corrupt(tmp_path / "bad.png"))
    truncated = tmp_path / "t.png"
    truncated.write_bytes(make_image(tmp_path / "ok.png", (256, 256)).read_bytes()[:400])
    with pytest.raises(MediaError, match="cannot decode image"):
        load_image(truncated)
    with pytest.raises(MediaError, match="is a directory"):
        load_image(tmp_path)


# --------------------------------------------------------------------------- URLs


def test_fetch_url_downloads_and_media_accept_urls(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    video = make_video(root / "v.mp4", seconds=2.0, audio=True)
    make_image(root / "i.png")
    make_audio(root / "a.wav", 1.0, 44100, 2)
    downloaded = fetch_url(f"{base}/v.mp4")
    try:
        assert downloaded.read_bytes() == video.read_bytes() and downloaded.suffix == ".mp4"
    finally:
        downloaded.unlink()
    torch.testing.assert_close(load_video(f"{base}/v.mp4").frames, load_video(video).frames, atol=0, rtol=0)
    np.testing.assert_array_equal(load_audio(f"{base}/a.wav"), load_audio(root / "a.wav"))
    from_url = np.asarray(load_image(f"{base}/i.png"))
    np.testing.assert_array_equal(from_url, np.asarray(load_image(root / "i.png")))
    assert probe(f"{base}/v.mp4").kind == "video"


def test_fetch_url_errors(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    (root / "big.bin").write_bytes(b"\x01" * 10000)
    with pytest.raises(MediaError, match="HTTP 404"):
        fetch_url(f"{base}/missing.mp4")
    with pytest.raises(MediaError, match=r"is 10000 bytes, over the 5000-byte limit"):  # Content-Length
        fetch_url(f"{base}/big.bin", max_bytes=5000)
    with pytest.raises(MediaError, match="exceeds the 5000-byte limit"):  # streamed, no length
        fetch_url(f"{base}/stream", max_bytes=5000)
    with pytest.raises(MediaError, match=r"cannot fetch .*timed out"):
        fetch_url(f"{base}/slow", timeout=0.3)
    with pytest.raises(MediaError, match="unsupported URL scheme 'ftp'"):
        fetch_url("ftp://example.com/a.mp4")
    with pytest.raises(MediaError, match="cannot fetch"):
        fetch_url("http://127.0.0.1:9/none.mp4", timeout=2.0)


# --------------------------------------------------------------------------- probe


def test_probe_detects_kind_from_content(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=2.0, fps=10, size=(64, 48), audio=True)
    renamed = tmp_path / "really_a_video.txt"
    renamed.write_bytes(video.read_bytes())
    info = probe(renamed)
    assert (info.kind, info.has_video, info.has_audio) == ("video", True, True)
    assert (info.width, info.height, info.video_fps, info.n_frames) == (64, 48, 10.0, 20)
    assert info.duration_s == pytest.approx(2.0, abs=0.05) and info.audio_sample_rate == 44100

    silent = probe(make_video(tmp_path / "s.webm", seconds=1.0, audio=False))
    assert (silent.kind, silent.has_audio, silent.n_frames) == ("video", False, None)

    cover = probe(make_audio_with_cover(tmp_path / "c.mp3"))
    assert (cover.kind, cover.has_video, cover.has_audio) == ("audio", False, True)
    wav = probe(make_audio(tmp_path / "a.wav", 1.5, 22050))
    assert (wav.kind, wav.audio_sample_rate) == ("audio", 22050)
    assert wav.duration_s == pytest.approx(1.5, abs=0.01)

    assert probe(make_image(tmp_path / "i.jpg")).kind == "image"
    gif = probe(make_image(tmp_path / "g.gif", frames=3))
    assert (gif.kind, gif.n_frames) == ("image", 3)

    text = tmp_path / "notes.mp4"
    text.write_text("plain words, ünïcödé\n" * 100, encoding="utf-8")
    assert probe(text).kind == "text"
    assert probe(make_corrupt(tmp_path / "x.bin")).kind == "unknown"
    (tmp_path / "empty").write_bytes(b"")
    assert probe(tmp_path / "empty").kind == "unknown"
    with pytest.raises(MediaError, match="file not found"):
        probe(tmp_path / "missing")


# --------------------------------------------------------------------------- video: windowed demux


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("long_videos")
    specs = {
        "mp4-gop10": ("v10.mp4", 45.0, 10),
        "mp4-gop250": ("v250.mp4", 60.0, 250),
        "mkv": ("v.mkv", 45.0, 25),
        "webm": ("v.webm", 45.0, None),  # libvpx default: a keyframe every 12.8 s here
    }
    return {
        key: make_video(root / name, seconds=sec, fps=10, size=(64, 48), audio=True, gop=gop, seed=3)
        for key, (name, sec, gop) in specs.items()
    }


def _packets(path: Path) -> tuple[Fraction, list[int], list[int]]:
    """Time base, every video pts and the keyframe pts (sorted), by a plain whole-file demux."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
        assert stream.time_base is not None
        tb = stream.time_base
    return tb, sorted(p for p, _ in packets), sorted(p for p, key in packets if key)


def _load_both(path: Path, options: dict, monkeypatch: pytest.MonkeyPatch) -> tuple:
    windowed = load_video(path, options=options)
    with monkeypatch.context() as m:
        m.setattr(video_module, "_WINDOWED_DEMUX", False)
        full = load_video(path, options=options)
    return windowed, full


def _assert_same(windowed: DecodedVideo, full: DecodedVideo) -> None:
    assert torch.equal(windowed.frames, full.frames)
    assert windowed.total_frames == full.total_frames
    assert windowed.sample_fps == full.sample_fps
    assert windowed.frame_indices == full.frame_indices
    assert windowed.timestamps_s == full.timestamps_s
    assert windowed.decoded_frames == full.decoded_frames  # same keyframes to seek to
    assert windowed.duration_s == full.duration_s


def _windows(path: Path) -> list[dict]:
    tb, pts, keys = _packets(path)
    last = float(pts[-1] * tb)
    mid_key = keys[len(keys) // 2]
    key_s = float(mid_key * tb)
    assert math.floor(key_s * (1 / tb)) == mid_key  # the window really starts on the keyframe
    before_key = pts[pts.index(mid_key) - 1]
    return [
        {"video_start": 0.0, "video_end": 12.0},
        {"video_end": 7.5},
        {"video_start": 17.33, "video_end": 31.7},
        {"video_start": key_s, "video_end": key_s + 9.0},  # starts exactly on a keyframe
        {"video_start": key_s + 0.05, "video_end": key_s + 6.0},  # the frame before is the keyframe
        {"video_start": float(before_key * tb) + 0.01, "video_end": key_s + 4.0},  # spans the keyframe
        {"video_start": last - 9.0, "video_end": last},  # ends on the last frame
        {"video_start": last - 7.0},  # open end
        {"video_start": last - 5.0, "video_end": last + 30.0},  # past the end
        {"video_start": 21.0, "video_end": 29.0, "nframes": 6},
    ]


@pytest.mark.parametrize("key", ["mp4-gop10", "mp4-gop250", "mkv", "webm"])
def test_windowed_demux_equals_whole_file_demux(
    long_videos: dict[str, Path], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = long_videos[key]
    total_packets = len(_packets(path)[1])
    for options in _windows(path):
        windowed, full = _load_both(path, options, monkeypatch)
        _assert_same(windowed, full)
        assert full.demuxed_packets == total_packets
        assert windowed.demuxed_packets < total_packets, options


def test_windowed_demux_matches_bruteforce_reference(long_videos: dict[str, Path]) -> None:
    path = long_videos["mp4-gop10"]
    for options in ({"video_start": 30.05, "video_end": 38.0}, {"video_start": 40.0}):
        out = load_video(path, options=options)
        ref, ref_fps = reference_video(path, options)
        torch.testing.assert_close(out.frames, ref, atol=1e-4, rtol=0)
        assert out.sample_fps == pytest.approx(ref_fps)


@pytest.mark.parametrize("key", ["mp4-gop10", "mp4-gop250", "mkv", "webm"])
def test_windowed_demux_reads_only_around_a_late_window(long_videos: dict[str, Path], key: str) -> None:
    path = long_videos[key]
    tb, pts, keys = _packets(path)
    start, end = float(pts[-1] * tb) - 10.0, float(pts[-1] * tb) - 5.0
    out = load_video(path, options={"video_start": start, "video_end": end})
    assert out.total_frames in (50, 51)
    # From the keyframe before the start to the end plus the reorder margin (3.2 s at 10 fps).
    seek_key = max(k for k in keys if k < math.floor(start / tb))
    bound = sum(1 for p in pts if seek_key <= p <= math.ceil(end / tb) + 3.3 / tb) + 8
    assert out.demuxed_packets <= bound
    assert out.demuxed_packets < len(pts) // 2 if key != "webm" else out.demuxed_packets < len(pts)


def test_windowed_demux_falls_back(long_videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = long_videos["mp4-gop10"]
    options = {"video_start": 33.3, "video_end": 40.0}
    with monkeypatch.context() as m:
        m.setattr(video_module, "_WINDOWED_DEMUX", False)
        full = load_video(path, options=options)
    total_packets = full.demuxed_packets

    # No seek that lands early enough: the window is demuxed from the file's start, up to its end.
    with monkeypatch.context() as m:
        m.setattr(video_module, "_SEEK_TRIES", 0)
        from_start = load_video(path, options=options)
    _assert_same(from_start, full)
    assert from_start.demuxed_packets < total_packets

    # A seek that lands after the start is retried further back.
    real_seek_demux = video_module._demux_from
    calls: list[bool] = []

    def late_first(*args: object, **kwargs: object) -> object:
        calls.append(True)
        if len(calls) == 1:
            return (10**9, set(), set())
        return real_seek_demux(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(video_module, "_demux_from", late_first)
        retried = load_video(path, options=options)
    assert len(calls) == 2
    _assert_same(retried, full)

    # The container cannot seek/read there: the whole file is demuxed as before.
    def broken(*args: object, **kwargs: object) -> object:
        raise av.FFmpegError(38, "Function not implemented")

    with monkeypatch.context() as m:
        m.setattr(video_module, "_demux_from", broken)
        fallback = load_video(path, options=options)
    _assert_same(fallback, full)
    assert fallback.demuxed_packets == total_packets
