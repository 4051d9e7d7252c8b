#!/usr/bin/env python3
"""Regenerate the small demo corpus in ``examples/media/`` (and the query clips
in ``examples/queries/``) from scratch, using only open tools.

    python examples/media/make_media.py                 # writes examples/media + examples/queries
    python examples/media/make_media.py --out DIR --queries-out QDIR
    python examples/media/make_media.py --verify-only   # just decode + summarise what is there

Generation needs:
  * ``espeak-ng`` on PATH (speech synthesis)   -> apt-get install -y espeak-ng
  * DejaVu TrueType fonts (slide / page text)   -> apt-get install -y fonts-dejavu-core
  * Python: av (PyAV, bundled FFmpeg with libx264/aac/libmp3lame/flac), pillow, numpy, soundfile

The generated files are committed, so *using* them (demo, tests) needs none of the
above except PyAV/pillow to decode. Output is deterministic for a given espeak-ng /
FFmpeg build (single-threaded x264, ``+bitexact`` muxing, seeded RNG).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
SR = 16_000  # every audio file / track is mono 16 kHz
VIDEO_SIZE = (320, 180)
VIDEO_FPS = 4

FONT_DIRS = [
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
]

# --------------------------------------------------------------------------- content
# Each spoken/visual item is on its own topic so a real model retrieves the right one.

SPEECH = {
    # audio-only files in the corpus
    "volcano": (
        "en-us",
        "The volcano erupted at dawn, sending ash into the sky and glowing lava down the mountain.",
    ),
    "quarterly_revenue": (
        "en-gb",
        "Quarterly revenue rose twelve percent to four million dollars, driven by cloud software sales.",
    ),
    "rocket_launch": (
        "en-us",
        "The rocket lifted off and placed a weather satellite in orbit.",
    ),
    # voice track of bread_baking.mp4; says what the slides do NOT show
    # (sourdough, starter, overnight, golden brown)
    "bread_voice": (
        "en-us",
        "To make sourdough bread, feed the starter, knead the dough, let it rise overnight, "
        "then preheat the oven and bake the loaf until golden brown.",
    ),
    # query clips (examples/queries/), different voice + phrasing from the indexed files
    "bread_question": ("en-gb", "How long do I bake a loaf of bread?"),
    "eruption_question": ("en-gb", "Did the mountain explode with fire and smoke?"),
}

BREAD_SLIDES = [  # (title, body, drawing)
    ("Baking Bread", "a simple home recipe", "loaf"),
    ("Step 1", "Knead the dough\nfor 10 minutes", "bowl"),
    ("Step 2", "Preheat the oven\nto 220 °C", "oven"),
    ("Step 3", "Bake for 30 minutes", "clock"),
]

TIDES_SLIDES = [
    ("Ocean Tides", "how the sea rises and falls", "waves"),
    ("The Moon's gravity", "pulls on the oceans", "moon"),
    ("High and low tide", "twice every day", "tide"),
]

DOC_TITLE = "Employee Travel Expense Policy"
DOC_PARAGRAPHS = [
    (
        "1. Flights",
        "Employees travelling for business must book economy class flights through the "
        "company travel portal at least fourteen days before departure. Business class is "
        "allowed only for flights longer than eight hours and needs written approval from "
        "a department director.",
    ),
    (
        "2. Hotels",
        "Hotel costs are reimbursed up to 180 dollars per night in most cities and up to "
        "250 dollars per night in high-cost cities such as London, Tokyo or New York. "
        "Minibar charges and room upgrades are not reimbursed.",
    ),
    (
        "3. Meals",
        "A daily meal allowance (per diem) of 60 dollars covers breakfast, lunch and dinner. "
        "Alcohol is never reimbursed.",
    ),
    (
        "4. Receipts",
        "Submit all receipts in the expense tool within 30 days of returning. Claims "
        "submitted later than 90 days will be rejected by the finance team.",
    ),
]

NOTES_MD = """\
# Honeybees and pollination

Honeybees visit flowers to collect nectar and pollen, which they carry back to the hive
to make honey and to feed their larvae. While a bee moves from blossom to blossom, pollen
grains stick to the fine hairs on its body and rub off onto the next flower, fertilising
it so that the plant can set seeds and fruit. About a third of the food crops people eat,
including apples, almonds and blueberries, depend on insect pollinators like bees.
A healthy colony in summer holds tens of thousands of worker bees and a single queen.
"""

# text queries and the file a good retriever should rank first (used by README + demo)
TEXT_QUERIES = [
    {
        "query": "how to bake a loaf of bread",
        "expect": "bread_baking.mp4",
        "note": "text -> video (slides + voice agree)",
    },
    {
        "query": "sourdough starter left to rise overnight until golden brown",
        "expect": "bread_baking.mp4",
        "note": "only in the SPOKEN track: audio-only / fused should win, video-only may miss",
    },
    {
        "query": "slide with an oven set to 220 degrees and a clock showing 30 minutes",
        "expect": "bread_baking.mp4",
        "note": "only in the SLIDES: video-only / fused should win, audio-only may miss",
    },
    {
        "query": "the moon's gravity causes high and low tides",
        "expect": "ocean_tides.mp4",
        "note": "text -> silent video",
    },
    {"query": "a volcano eruption with lava and ash", "expect": "volcano.wav", "note": "text -> audio (wav)"},
    {
        "query": "company earnings grew twelve percent last quarter",
        "expect": "quarterly_revenue.mp3",
        "note": "text -> audio (mp3)",
    },
    {
        "query": "a rocket launching a satellite into orbit",
        "expect": "rocket_launch.flac",
        "note": "text -> audio (flac)",
    },
    {
        "query": "hotel reimbursement limit per night for business trips",
        "expect": "document_page.png",
        "note": "text -> document image",
    },
    {
        "query": "sunset over snowy mountains and a lake",
        "expect": "mountain_sunset.jpg",
        "note": "text -> photo",
    },
    {"query": "how do bees pollinate flowers", "expect": "notes.md", "note": "text -> text"},
]
AUDIO_QUERIES = [
    {
        "query_file": "bread_question.wav",
        "expect": "bread_baking.mp4",
        "note": "audio -> video (matches the voice track)",
    },
    {"query_file": "eruption_question.wav", "expect": "volcano.wav", "note": "audio -> audio"},
]


# --------------------------------------------------------------------------- helpers


def die(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def find_font(name: str) -> Path:
    for d in FONT_DIRS:
        p = d / name
        if p.is_file():
            return p
    die(
        f"font {name} not found in {[str(d) for d in FONT_DIRS]}; "
        "install it with: apt-get install -y fonts-dejavu-core"
    )
    raise AssertionError


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(find_font(name)), size)


def check_tools() -> None:
    if shutil.which("espeak-ng") is None:
        die(
            "espeak-ng not found on PATH. Install it with:\n"
            "    apt-get update && apt-get install -y espeak-ng fonts-dejavu-core   # Debian/Ubuntu\n"
            "    brew install espeak-ng                                             # macOS"
        )
    need = {"libx264", "aac", "libmp3lame", "flac"}
    missing = need - set(av.codecs_available)
    if "libx264" in missing and "mpeg4" in av.codecs_available:
        missing.discard("libx264")  # falls back to mpeg4
    if missing:
        die(f"PyAV's FFmpeg lacks encoders {sorted(missing)}; use the PyPI 'av' wheel (bundled FFmpeg)")
    find_font("DejaVuSans.ttf")


def speak(text: str, voice: str, speed: int = 165) -> np.ndarray:
    """espeak-ng -> float32 mono at SR (resampled with PyAV/libswresample)."""
    with tempfile.TemporaryDirectory() as td:
        wav = Path(td) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        data, sr = sf.read(wav, dtype="int16", always_2d=True)
    mono = data[:, 0].copy()
    if sr != SR:
        mono = resample_s16(mono, sr, SR)
    x = mono.astype(np.float32) / 32768.0
    # trim long leading/trailing silence, keep 0.15 s margins, normalise to -3 dBFS
    nz = np.flatnonzero(np.abs(x) > 0.01)
    if nz.size:
        a = max(0, nz[0] - int(0.15 * SR))
        b = min(len(x), nz[-1] + int(0.15 * SR))
        x = x[a:b]
    peak = float(np.max(np.abs(x))) or 1.0
    return (x * (0.7 / peak)).astype(np.float32)


def resample_s16(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    rs = av.AudioResampler(format="s16", layout="mono", rate=sr_out)
    fr = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
    fr.sample_rate = sr_in
    fr.pts = 0
    fr.time_base = Fraction(1, sr_in)
    out = [f.to_ndarray().reshape(-1) for f in rs.resample(fr)]
    out += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(out).astype(np.int16)


def to_s16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def _open_out(path: Path, fmt: str | None = None) -> av.container.OutputContainer:
    return av.open(str(path), mode="w", format=fmt, options={"fflags": "+bitexact"})


def _encode_audio_into(
    container: av.container.OutputContainer, stream: av.AudioStream, x: np.ndarray
) -> None:
    """Feed mono float32 samples to an audio stream (PyAV re-chunks to frame_size)."""
    chunk = 1024 * 4
    pts = 0
    for i in range(0, len(x), chunk):
        seg = to_s16(x[i : i + chunk]).reshape(1, -1)
        fr = av.AudioFrame.from_ndarray(seg, format="s16", layout="mono")
        fr.sample_rate = SR
        fr.pts = pts
        fr.time_base = Fraction(1, SR)
        pts += seg.shape[1]
        for pkt in stream.encode(fr):
            container.mux(pkt)
    for pkt in stream.encode(None):
        container.mux(pkt)


def write_audio(path: Path, x: np.ndarray) -> None:
    ext = path.suffix.lower()
    if ext == ".wav":  # plain RIFF PCM16, written without any encoder tag
        sf.write(path, to_s16(x), SR, subtype="PCM_16")
        return
    codec, fmt, opts = {
        ".mp3": ("libmp3lame", "mp3", {"b": "32k"}),
        ".flac": ("flac", "flac", {}),
        ".m4a": ("aac", "ipod", {"b": "32k"}),
        ".ogg": ("libopus", "ogg", {"b": "24k"}),
    }[ext]
    with _open_out(path, fmt) as c:
        st = c.add_stream(codec, rate=SR, layout="mono")
        assert isinstance(st, av.AudioStream)
        if "b" in opts:
            st.bit_rate = int(opts["b"].rstrip("k")) * 1000
        st.codec_context.options = {"flags": "+bitexact"}
        _encode_audio_into(c, st, x)


# --------------------------------------------------------------------------- drawings


def draw_icon(d: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    w, h = x1 - x0, y1 - y0
    if kind == "loaf":
        d.ellipse([x0, y0 + h * 0.25, x1, y1], fill=(196, 128, 58), outline=(110, 60, 20), width=3)
        for k in range(3):
            sx = x0 + w * (0.25 + 0.22 * k)
            d.line([sx, y0 + h * 0.45, sx + w * 0.12, y0 + h * 0.75], fill=(110, 60, 20), width=3)
    elif kind == "bowl":
        d.chord([x0, y0 - h * 0.2, x1, y1], 0, 180, fill=(70, 110, 170), outline=(30, 50, 90), width=3)
        d.ellipse([x0 + w * 0.2, y0 + h * 0.15, x1 - w * 0.2, cy + h * 0.1], fill=(240, 220, 170))
    elif kind == "oven":
        d.rectangle([x0, y0, x1, y1], fill=(90, 90, 95), outline=(20, 20, 20), width=3)
        d.rectangle(
            [x0 + 8, y0 + h * 0.3, x1 - 8, y1 - 8], fill=(255, 140, 30), outline=(20, 20, 20), width=2
        )
        for k in range(3):
            kx = x0 + w * (0.25 + 0.25 * k)
            d.ellipse([kx - 6, y0 + 6, kx + 6, y0 + 18], fill=(220, 220, 220))
    elif kind == "clock":
        r = min(w, h) // 2
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 250, 250), outline=(30, 30, 30), width=4)
        d.line([cx, cy, cx, cy - r * 0.8], fill=(30, 30, 30), width=4)  # minute hand at 12
        d.line([cx, cy, cx, cy + r * 0.8], fill=(200, 30, 30), width=3)  # 30 min sweep
        d.pieslice([cx - r + 6, cy - r + 6, cx + r - 6, cy + r - 6], -90, 90, fill=(255, 200, 200))
        d.line([cx, cy - r * 0.8, cx, cy + r * 0.8], fill=(30, 30, 30), width=3)
    elif kind == "waves":
        for k in range(3):
            pts = [(x0 + t, cy + k * 14 + 8 * math.sin(t / 12.0 + k)) for t in range(0, w + 1, 4)]
            d.line(pts, fill=(255, 255, 255), width=4)
    elif kind == "moon":
        r = h // 3
        d.ellipse([x0, cy - r, x0 + 2 * r, cy + r], fill=(40, 110, 200), outline=(20, 150, 60), width=5)
        mr = r // 2
        d.ellipse([x1 - 2 * mr, cy - mr, x1, cy + mr], fill=(230, 230, 210))
        d.line([x0 + 2 * r + 6, cy, x1 - 2 * mr - 6, cy], fill=(255, 255, 255), width=2)
    elif kind == "tide":  # the same beach at high and at low water
        small = font("DejaVuSans.ttf", 11)
        for bx, level, label in [(x0, y0 + h * 0.35, "high"), (cx + 4, y0 + h * 0.75, "low")]:
            bw = w // 2 - 4
            d.polygon([(bx, y1), (bx + bw, y1), (bx + bw, y0 + h * 0.3)], fill=(225, 200, 140))  # sand
            d.rectangle([bx, level, bx + bw, y1], fill=(40, 120, 210))
            d.text((bx + 2, y0), label, font=small, fill=(255, 255, 255))


def render_slide(
    title: str, body: str, icon: str, bg: tuple[int, int, int], fg=(255, 255, 255)
) -> Image.Image:
    W, H = VIDEO_SIZE
    img = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(img)
    size = 28
    while d.textlength(title, font=font("DejaVuSans-Bold.ttf", size)) > W - 28:
        size -= 1
    d.text((14, 12), title, font=font("DejaVuSans-Bold.ttf", size), fill=fg)
    d.multiline_text((14, 56), body, font=font("DejaVuSans.ttf", 18), fill=fg, spacing=6)
    draw_icon(d, icon, (W - 120, H - 100, W - 16, H - 16))
    return img


def write_video(path: Path, frames: list[Image.Image], audio: np.ndarray | None) -> None:
    vcodec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with _open_out(path, "mp4") as c:
        vs = c.add_stream(vcodec, rate=VIDEO_FPS)
        assert isinstance(vs, av.VideoStream)
        vs.width, vs.height = VIDEO_SIZE
        vs.pix_fmt = "yuv420p"
        if vcodec == "libx264":
            vs.options = {
                "crf": "30",
                "preset": "medium",
                "tune": "stillimage",
                "threads": "1",
                "g": str(VIDEO_FPS * 2),
                "x264-params": "log-level=error",
            }
        else:
            vs.bit_rate = 60_000
        vs.codec_context.thread_count = 1
        ast = None
        if audio is not None:
            ast = c.add_stream("aac", rate=SR, layout="mono")
            ast.bit_rate = 32_000
        for i, im in enumerate(frames):
            vf = av.VideoFrame.from_image(im)
            vf.pts = i
            vf.time_base = Fraction(1, VIDEO_FPS)
            for pkt in vs.encode(vf):
                c.mux(pkt)
        for pkt in vs.encode(None):
            c.mux(pkt)
        if ast is not None and audio is not None:
            _encode_audio_into(c, ast, audio)


def slides_to_frames(slides, seconds: float, bg_cycle) -> list[Image.Image]:
    n = round(seconds * VIDEO_FPS)
    imgs = [render_slide(t, b, ic, bg_cycle[i % len(bg_cycle)]) for i, (t, b, ic) in enumerate(slides)]
    return [imgs[min(len(imgs) - 1, i * len(imgs) // n)] for i in range(n)]


def make_document_page(path: Path) -> None:
    W, H, M = 600, 800, 48
    img = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    ft, fh, fb = (
        font("DejaVuSerif-Bold.ttf", 26),
        font("DejaVuSans-Bold.ttf", 17),
        font("DejaVuSerif.ttf", 15),
    )
    d.text((M, 40), DOC_TITLE, font=ft, fill=(10, 10, 10))
    d.text(
        (M, 78),
        "Finance Department  ·  Revision 3  ·  Internal",
        font=font("DejaVuSans.ttf", 12),
        fill=(90, 90, 90),
    )
    d.line([M, 100, W - M, 100], fill=(40, 40, 40), width=2)
    y = 120
    for head, para in DOC_PARAGRAPHS:
        d.text((M, y), head, font=fh, fill=(20, 40, 110))
        y += 28
        line = ""
        for word in para.split():
            trial = f"{line} {word}".strip()
            if d.textlength(trial, font=fb) > W - 2 * M:
                d.text((M, y), line, font=fb, fill=(25, 25, 25))
                y += 22
                line = word
            else:
                line = trial
        if line:
            d.text((M, y), line, font=fb, fill=(25, 25, 25))
            y += 22
        y += 16
    d.line([M, H - 56, W - M, H - 56], fill=(180, 180, 180), width=1)
    d.text((M, H - 46), "Page 1 of 1", font=font("DejaVuSans.ttf", 12), fill=(120, 120, 120))
    img.save(path, optimize=True)


def make_photo(path: Path) -> None:
    W, H = 480, 320
    rng = np.random.default_rng(1234)
    yy = np.linspace(0, 1, H)[:, None, None]
    top, bottom = np.array([70, 40, 120.0]), np.array([255, 150, 60.0])
    sky = (top * (1 - yy) + bottom * yy) * np.ones((1, W, 1))
    img = Image.fromarray(sky.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    horizon = int(H * 0.66)
    for r, a in [(70, 0.18), (55, 0.3), (42, 1.0)]:  # setting sun with a soft glow
        glow = Image.new("RGB", (W, H), (255, 225, 120))
        mask = Image.new("L", (W, H), 0)
        ImageDraw.Draw(mask).ellipse([350 - r, 95 - r, 350 + r, 95 + r], fill=int(255 * a))
        img.paste(glow, (0, 0), mask)
    d = ImageDraw.Draw(img)
    ranges = [
        ([(0, 160), (80, 105), (170, 150), (250, 85), (340, 150), (420, 110), (480, 140)], (110, 80, 120)),
        ([(0, 190), (110, 140), (210, 195), (320, 150), (400, 190), (480, 170)], (60, 45, 80)),
    ]
    for peaks, col in ranges:
        d.polygon([(0, horizon), *peaks, (W, horizon)], fill=col)
        for i in range(1, len(peaks) - 1):  # snow caps following the slopes
            (lx, ly), (px, py), (rx, ry) = peaks[i - 1], peaks[i], peaks[i + 1]
            if py > 150:
                continue
            f = 0.28
            left, right = (px + (lx - px) * f, py + (ly - py) * f), (px + (rx - px) * f, py + (ry - py) * f)
            mid = (px, max(left[1], right[1]) - 4)
            d.polygon(
                [
                    left,
                    (px, py),
                    right,
                    ((px + right[0]) / 2, mid[1] + 5),
                    mid,
                    ((px + left[0]) / 2, mid[1] + 5),
                ],
                fill=(245, 240, 250),
            )
    # lake with mirrored, darkened reflection
    arr = np.asarray(img).astype(np.float32)
    refl = arr[horizon - (H - horizon) : horizon][::-1] * 0.55 + np.array([10, 30, 60]) * 0.45
    refl += rng.normal(0, 6, refl.shape)
    arr[horizon:] = refl
    arr += rng.normal(0, 2.5, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.SMOOTH)
    ImageDraw.Draw(img).line([0, horizon, W, horizon], fill=(40, 30, 50), width=1)
    img.save(path, quality=80, optimize=True)


# --------------------------------------------------------------------------- main


def generate(out: Path, qout: Path) -> None:
    check_tools()
    out.mkdir(parents=True, exist_ok=True)
    qout.mkdir(parents=True, exist_ok=True)
    sp = {k: speak(t, v) for k, (v, t) in SPEECH.items()}

    write_audio(out / "volcano.wav", sp["volcano"])
    write_audio(out / "quarterly_revenue.mp3", sp["quarterly_revenue"])
    write_audio(out / "rocket_launch.flac", sp["rocket_launch"])

    voice = sp["bread_voice"]
    secs = math.ceil((len(voice) / SR + 0.5) * VIDEO_FPS) / VIDEO_FPS
    pad = round(secs * SR) - len(voice)
    voice = np.concatenate([np.zeros(pad // 2, np.float32), voice, np.zeros(pad - pad // 2, np.float32)])
    write_video(
        out / "bread_baking.mp4", slides_to_frames(BREAD_SLIDES, secs, [(150, 80, 30), (120, 60, 25)]), voice
    )
    write_video(
        out / "ocean_tides.mp4", slides_to_frames(TIDES_SLIDES, 7.5, [(20, 70, 140), (15, 50, 110)]), None
    )

    make_document_page(out / "document_page.png")
    make_photo(out / "mountain_sunset.jpg")
    (out / "notes.md").write_text(NOTES_MD, encoding="utf-8")

    write_audio(qout / "bread_question.wav", sp["bread_question"])
    write_audio(qout / "eruption_question.wav", sp["eruption_question"])
    (qout / "queries.json").write_text(
        json.dumps({"corpus": "examples/media", "text": TEXT_QUERIES, "audio": AUDIO_QUERIES}, indent=2)
        + "\n",
        encoding="utf-8",
    )


def describe(p: Path) -> str:
    ext = p.suffix.lower()
    if ext in {".md", ".txt", ".json"}:
        return f"text, {len(p.read_text(encoding='utf-8').split())} words"
    if ext in {".png", ".jpg", ".jpeg"}:
        with Image.open(p) as im:
            im.load()
            return f"image {im.format} {im.size[0]}x{im.size[1]} {im.mode}"
    parts: list[str] = []
    dur = 0.0
    with av.open(str(p)) as c:
        fmt = c.format.name
        has_audio = bool(c.streams.audio)
        if c.duration:
            dur = c.duration / 1e6
        for vs in c.streams.video:
            n = sum(1 for _ in c.decode(vs))
            cc = vs.codec_context
            parts.append(
                f"video {cc.name} {cc.width}x{cc.height} @{float(vs.average_rate or 0):g}fps {n} frames"
            )
    with av.open(str(p)) as c:
        for a in c.streams.audio:
            n = sum(f.samples for f in c.decode(a))
            dur = max(dur, n / a.rate)
            parts.append(f"audio {a.codec_context.name} {a.rate}Hz {a.channels}ch {n / a.rate:.2f}s")
    track = "yes" if has_audio else "NO"
    return f"{fmt}: " + "; ".join(parts) + f" | {dur:.2f}s | audio track: {track}"


def verify(dirs: list[Path]) -> int:
    total, bad = 0, 0
    for d in dirs:
        for p in sorted(d.iterdir()):
            if p.suffix.lower() in {".py"} or p.name == "README.md" or not p.is_file():
                continue
            size = p.stat().st_size
            total += size
            try:
                info = describe(p)
            except Exception as e:
                info, bad = f"FAILED TO DECODE: {e!r}", bad + 1
            print(f"{p.relative_to(d.parent)!s:36s} {size / 1024:7.1f} KB  {info}")
    print(f"total {total / 1024:.1f} KB in {', '.join(str(d) for d in dirs)}")
    return 1 if bad or total > 1024 * 1024 else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE, help="corpus folder (default: examples/media)")
    ap.add_argument(
        "--queries-out",
        type=Path,
        default=HERE.parent / "queries",
        help="query clips folder, kept OUTSIDE the corpus (default: examples/queries)",
    )
    ap.add_argument("--verify-only", action="store_true", help="only decode and summarise existing files")
    a = ap.parse_args()
    if not a.verify_only:
        generate(a.out, a.queries_out)
    return verify([a.out, a.queries_out])


if __name__ == "__main__":
    sys.exit(main())
