"""Peak memory of indexing a 10-minute vs a 1-minute video, segmented, with the tiny checkpoint.

    python benchmarks/bench_segments.py [--fps 2] [--size 320x240] [--minutes 1 10] [--json out.json]

Each case runs in its own subprocess: load the model, warm up on a 2-s clip (so lazy imports
and allocator pools count as baseline), take the current RSS as baseline and restart the
kernel's peak-RSS mark, index the video with ``OmniRetriever.add`` and the default
:class:`~omni_rag.segments.SegmentPolicy` (60-s windows), read the peak (``VmHWM``).
Reported: the growth over the baseline per case and the ratio of the longest to the shortest
case (acceptance: <= 1.5). Memory must not grow with the length of a recording, only with
the window.

It also checks the media layer per window: for the last window of each video, the frames the
decoder produced (``DecodedVideo.decoded_frames``) against the frames sampled, and the time to
load the window's video and audio, so work that grows with the file's length instead of the
window's shows up. The tiny checkpoint has the real processors (resizing, features), so
decoding and preprocessing cost what they cost with the real model; the transformer is tiny.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: `tests` must be importable
    sys.path.insert(0, str(ROOT))


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def reset_peak_rss() -> None:
    """Restart the peak-RSS mark from the current RSS (``clear_refs`` 5, Linux >= 4.0).

    ``ru_maxrss`` cannot be used: Linux carries it across ``fork``/``exec``, so a child would
    report its parent's peak (here the parent generated a 10-minute video just before).
    """
    Path("/proc/self/clear_refs").write_text("5")


def index_case(video: str) -> dict[str, Any]:
    """Child process: baseline after model load and warm-up, then peak while indexing ``video``."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omni_rag import Content, OmniEmbedder
    from omni_rag.retriever import OmniRetriever
    from omni_rag.store import OmniStore
    from omni_rag.testing import tiny_checkpoint
    from omni_rag.testing.media import make_video

    embedder = OmniEmbedder.from_pretrained(tiny_checkpoint("native"), device="cpu")
    retriever = OmniRetriever(embedder, OmniStore("bench"))
    with tempfile.TemporaryDirectory() as tmp:
        warm = str(make_video(Path(tmp) / "warm.mp4", seconds=2.0, fps=10, size=(320, 240), audio=True))
        retriever.add([Content(audio=warm, video=warm)])
    baseline = _status_mib("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    result = retriever.add([Content(audio=video, video=video)])
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM")
    points = retriever.store.get(result.added)
    return {
        "baseline_mib": round(baseline, 1),
        "peak_mib": round(peak, 1),
        "growth_mib": round(peak - baseline, 1),
        "segments": len(result.added),
        "ranges": [(p.payload["start_s"], p.payload["end_s"]) for p in points if p is not None],
        "index_seconds": round(seconds, 1),
    }


def window_cost(video: str, start_s: float, end_s: float) -> dict[str, Any]:
    """Decode work for one window: frames decoded vs sampled, and wall time per stream."""
    from omni_rag import media

    media.load_audio(video, start_s=0.0, end_s=1.0)  # imports and first-call setup out of the timing
    t0 = time.perf_counter()
    decoded = media.load_video(video, options={"video_start": start_s, "video_end": end_s})
    t1 = time.perf_counter()
    media.load_audio(video, start_s=start_s, end_s=end_s)
    t2 = time.perf_counter()
    from omni_rag.media import video as video_module

    t3 = time.perf_counter()
    with video_module._open(Path(video)) as container:  # what load_video does first, for every window
        timeline = video_module._demux_timeline(container, video_module._video_stream(container))
    t4 = time.perf_counter()
    return {
        "window": (start_s, end_s),
        "timeline_packets": len(timeline.pts) if timeline is not None else None,
        "timeline_demux_s": round(t4 - t3, 3),
        "sampled_frames": len(decoded.frame_indices),
        "decoded_frames": decoded.decoded_frames,
        "video_load_s": round(t1 - t0, 2),
        "audio_load_s": round(t2 - t1, 2),
    }


def run_child(video: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", video],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--fps", type=float, default=2.0, help="source frame rate (qwen samples 2 fps)")
    parser.add_argument("--size", default="320x240", help="source frame size WxH")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(index_case(args.child)))
        return
    from tests.test_segments import make_minutes_video

    width, height = (int(x) for x in args.size.split("x"))
    results: dict[str, Any] = {"fps": args.fps, "size": args.size, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = str(
                make_minutes_video(Path(tmp) / f"v{minutes}.mkv", minutes, fps=args.fps, size=(width, height))
            )
            case = run_child(path)
            case["last_window"] = window_cost(path, 60.0 * (minutes - 1), 60.0 * minutes)
            case["file_mib"] = round(os.path.getsize(path) / 2**20, 2)
            results["cases"][f"{minutes}min"] = case
            print(f"{minutes:>3} min: {json.dumps(case)}", flush=True)
    growth = [c["growth_mib"] for c in results["cases"].values()]
    results["ratio_longest_to_shortest"] = round(max(growth[-1], 1.0) / max(growth[0], 1.0), 3)
    print(
        f"peak-RSS growth ratio {args.minutes[-1]} min / {args.minutes[0]} min: "
        f"{results['ratio_longest_to_shortest']} (acceptance <= 1.5)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
