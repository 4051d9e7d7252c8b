"""Long audio/video: segment plans, segmented items, and a 10-minute video indexed and found per segment."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from omni_rag import Content, OmniEmbedder, OmniInputError
from omni_rag.retriever import OmniRetriever, content_id
from omni_rag.segments import (
    AUDIO_TOKENS_PER_S,
    CARD_AUDIO_MAX_S,
    CONTEXT_TOKENS,
    DEFAULT_POLICY,
    MAX_SAMPLED_FRAMES,
    SegmentPolicy,
    plan_item,
    plan_segments,
    segment_item,
)
from omni_rag.store import OmniStore
from omni_rag.testing.media import make_audio, make_video

MINUTES = 10
WINDOW_S = 120.0  # 10 minutes -> 5 segments: the test embeds 600 s of media once, in about 30 s


def make_minutes_video(
    path: str | Path,
    minutes: int = MINUTES,
    *,
    fps: float = 0.25,
    size: tuple[int, int] = (64, 48),
    sample_rate: int = 16000,
) -> Path:
    """A video whose picture and voice-like audio change every minute, written in a few seconds.

    Minute ``m`` has its own colours and a tone at ``150 * 1.2**m`` Hz with two harmonics under a
    3 Hz syllable-like envelope, so segments differ in both streams. H.264 with a keyframe every
    10 frames (seeking matters) and FLAC audio in Matroska: AAC would take ~40 s to encode 10 min.
    """
    path = Path(path)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(100))
        assert isinstance(video, av.VideoStream)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.gop_size = 10
        video.options = {"preset": "ultrafast", "crf": "23"}
        audio = container.add_stream("flac", rate=sample_rate)
        assert isinstance(audio, av.AudioStream)
        audio.codec_context.layout = "mono"
        audio.codec_context.format = "s16"
        for i in range(round(minutes * 60 * fps)):
            minute = int(i / fps // 60)
            img = np.empty((height, width, 3), dtype=np.uint8)
            img[..., 0] = (40 * minute + 2 * xx) % 256
            img[..., 1] = (255 - 25 * minute + yy * (minute + 1)) % 256
            img[..., 2] = (3 * i) % 256
            container.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(video.encode(None))
        t = np.arange(minutes * 60 * sample_rate) / sample_rate
        phase = 2 * np.pi * np.cumsum(150.0 * 1.2 ** (t // 60)) / sample_rate
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
        wave = envelope * (0.25 * np.sin(phase) + 0.1 * np.sin(3 * phase) + 0.05 * np.sin(5 * phase))
        samples = np.round(32767 * wave).astype(np.int16)
        for start in range(0, samples.shape[0], 16384):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 16384].copy(), layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


# -- plan_segments ----------------------------------------------------------------------------------

POLICIES = [
    DEFAULT_POLICY,
    SegmentPolicy(window_s=60, overlap_s=10, min_segment_s=15),
    SegmentPolicy(window_s=30, overlap_s=0, min_segment_s=30),
    SegmentPolicy(window_s=10, overlap_s=9.5, min_segment_s=0.5),
    SegmentPolicy(window_s=7, overlap_s=2.5, min_segment_s=3),
]
DURATIONS = [0.4, 1.0, 7.0, 29.9, 60.0, 60.5, 74.9, 75.0, 119.0, 121.0, 600.0, 7200.0, 1234.567]


@pytest.mark.parametrize(("policy", "duration"), list(itertools.product(POLICIES, DURATIONS)))
def test_plan_covers_the_media_with_the_configured_overlap(policy: SegmentPolicy, duration: float) -> None:
    plan = plan_segments(duration, policy)
    assert plan[0][0] == 0.0 and plan[-1][1] == duration  # nothing cut
    for (s0, e0), (s1, _) in itertools.pairwise(plan):
        assert s1 == pytest.approx(s0 + policy.hop_s)  # regular starts
        assert e0 - s1 == pytest.approx(policy.overlap_s)  # contiguous, or overlapping as configured
        assert e0 - s0 == pytest.approx(policy.window_s)  # only the last may differ
    if len(plan) > 1:
        tail_new = plan[-1][1] - plan[-2][1]
        assert tail_new >= policy.min_segment_s - 1e-9  # no tiny tail
        assert plan[-1][1] - plan[-1][0] < policy.max_segment_s  # a merged tail stays bounded
    else:
        assert duration < policy.max_segment_s  # one segment only when it fits one window + tail


def test_short_media_is_one_segment_and_tails_merge() -> None:
    assert plan_segments(59.0) == [(0.0, 59.0)]
    assert plan_segments(70.0) == [(0.0, 70.0)]  # 10 s tail < 15 s: merged, not a second segment
    assert plan_segments(80.0) == [(0.0, 60.0), (60.0, 80.0)]
    assert plan_segments(600.0, SegmentPolicy(window_s=120)) == [
        (120.0 * k, 120.0 * (k + 1)) for k in range(5)
    ]
    assert plan_segments(7200.0)[-1] == (7140.0, 7200.0) and len(plan_segments(7200.0)) == 120
    with pytest.raises(ValueError):
        plan_segments(0.0)
    with pytest.raises(ValueError):
        plan_segments(float("nan"))


def test_policy_rejects_inconsistent_values() -> None:
    for bad in (
        {"window_s": 0},
        {"overlap_s": 60},
        {"overlap_s": -1},
        {"min_segment_s": 0},
        {"min_segment_s": 61},
    ):
        with pytest.raises(ValueError):
            SegmentPolicy(**bad)  # type: ignore[arg-type]


def test_default_policy_fits_the_token_budget_with_margin() -> None:
    bounds = DEFAULT_POLICY.token_bounds()
    assert bounds["audio"] == 1875 and bounds["video"] == 4800  # worst case: a 75 s merged tail
    assert DEFAULT_POLICY.window_s * AUDIO_TOKENS_PER_S == 1500
    assert bounds["audio"] + bounds["video"] < CONTEXT_TOKENS / 4  # even embedded jointly
    assert bounds["frames"] <= MAX_SAMPLED_FRAMES  # qwen keeps sampling at 2 fps
    assert DEFAULT_POLICY.max_segment_s < CARD_AUDIO_MAX_S  # never more audio than the card feeds


# -- segment_item -----------------------------------------------------------------------------------


def test_segments_share_one_window_for_audio_and_video(tmp_path: Path) -> None:
    clip = str(make_video(tmp_path / "c.mp4", seconds=2.0, fps=4))
    item = Content(text="talk", audio=clip, video=clip, metadata={"lang": "en"})
    parts = segment_item(item, source_duration_s=150.0)
    assert [(p.start_s, p.end_s) for p in parts] == [(0.0, 60.0), (60.0, 120.0), (120.0, 150.0)]
    for k, part in enumerate(parts):
        assert part.audio == clip and part.video == clip and part.text == "talk"
        assert dict(part.metadata) == {"lang": "en", "segment_index": k}
    assert dict(item.metadata) == {"lang": "en"}  # the original is not modified


def test_items_that_stay_whole(tmp_path: Path) -> None:
    clip = str(make_video(tmp_path / "c.mp4", seconds=2.0, fps=4))
    untouched = [
        Content(text="only text"),
        Content(image=np.zeros((8, 8, 3), dtype=np.uint8)),
        Content(video=clip, audio=clip),  # 2 s: probed, shorter than a window
        Content(video=np.zeros((400, 8, 8, 3), dtype=np.uint8)),  # a frame array has no fps
    ]
    for item in untouched:
        assert segment_item(item) == [item] and segment_item(item)[0] is item
    long_item = Content(video=clip, audio=clip)
    assert segment_item(long_item, policy=None, source_duration_s=3600.0) == [long_item]  # caller opted out
    assert not plan_item(long_item).segmented and plan_item(long_item).duration_s == pytest.approx(
        2.0, abs=0.1
    )


def test_audio_arrays_are_cut_by_length_and_windows_are_respected() -> None:
    wave = np.zeros(16000 * 100, dtype=np.float32)
    parts = segment_item(Content(audio=wave), policy=SegmentPolicy(window_s=30, min_segment_s=5))
    assert [(p.start_s, p.end_s) for p in parts] == [(0.0, 30.0), (30.0, 60.0), (60.0, 90.0), (90.0, 100.0)]
    # an item that already has a window is segmented inside it, ending at the source's end
    inside = segment_item(Content(audio=wave, start_s=10.0, end_s=500.0), policy=SegmentPolicy(window_s=40))
    assert [(p.start_s, p.end_s) for p in inside] == [(10.0, 50.0), (50.0, 100.0)]


def test_sources_of_different_lengths_drop_the_shorter_stream_past_its_end(tmp_path: Path) -> None:
    short_audio = str(make_audio(tmp_path / "a.wav", seconds=20.0))
    long_audio = np.zeros(16000 * 70, dtype=np.float32)
    parts = segment_item(
        Content(audio=long_audio, video=str(make_video(tmp_path / "v.mp4", seconds=50.0, fps=1))),
        policy=SegmentPolicy(window_s=20, min_segment_s=5),
    )
    assert [(p.start_s, p.end_s, p.modalities) for p in parts] == [
        (0.0, 20.0, ("video", "audio")),
        (20.0, 40.0, ("video", "audio")),
        (40.0, 60.0, ("video", "audio")),
        (60.0, 70.0, ("audio",)),  # the 50 s video has nothing in [60, 70]
    ]
    with pytest.raises(OmniInputError) as caught:
        segment_item(Content(audio=str(tmp_path / "missing.wav")), index=3)
    assert (caught.value.index, caught.value.field) == (3, "audio")
    assert (
        len(segment_item(Content(audio=short_audio), policy=SegmentPolicy(window_s=8, min_segment_s=4))) == 3
    )


# -- a 10-minute video, indexed and searched ---------------------------------------------------------


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_minutes_video(tmp_path_factory.mktemp("long") / "talk.mkv"))


@pytest.fixture(scope="module")
def indexed(embedder: OmniEmbedder, long_video: str) -> Iterator[tuple[OmniRetriever, list[str]]]:
    retriever = OmniRetriever(embedder, OmniStore("long"), k=10)
    short = Content(audio=np.sin(np.arange(16000 * 3) / 9.0).astype(np.float32))
    added = retriever.add(
        [Content(audio=long_video, video=long_video), "a short note", short],
        segment=SegmentPolicy(window_s=WINDOW_S),
    ).added
    yield retriever, added
    retriever.store.close()


def test_long_video_becomes_contiguous_timestamped_segments(
    indexed: tuple[OmniRetriever, list[str]], long_video: str
) -> None:
    retriever, added = indexed
    base = content_id(Content(audio=long_video, video=long_video))
    n = MINUTES * 60 // int(WINDOW_S)
    assert added[:n] == [f"{base}#{k}" for k in range(n)]
    points = retriever.store.get(added[:n])
    ranges = []
    for k, point in enumerate(points):
        assert point is not None
        assert point.payload["source"] == long_video and point.payload["segment_index"] == k
        assert point.payload["modalities"] == ["audio", "video"]  # both streams, fused per segment
        ranges.append((point.payload["start_s"], point.payload["end_s"]))
    assert ranges == [(WINDOW_S * k, WINDOW_S * (k + 1)) for k in range(n)]
    # short items stay one point each, under their plain content id, with no time range
    short_points = retriever.store.get(added[n:])
    assert len(added) == n + 2 and added[n] == content_id(Content(text="a short note"))
    assert all(p is not None and p.payload["start_s"] is None and "#" not in p.id for p in short_points)
    assert retriever.store.count() == n + 2


@pytest.mark.parametrize("segment", [1, 3])
def test_grouped_search_finds_the_video_once_with_the_right_segment_first(
    indexed: tuple[OmniRetriever, list[str]], long_video: str, segment: int
) -> None:
    retriever, _ = indexed
    start, end = WINDOW_S * segment, WINDOW_S * (segment + 1)
    # The query is that segment's video window: its embedding is the stored video vector up to the
    # prompt ("query: " vs "passage: "). The tiny model's random audio tower gives nearly equal audio
    # vectors to every minute, so the video stream is what tells the segments apart.
    groups = retriever.search_grouped(Content(video=long_video, start_s=start, end_s=end), group_size=5)
    assert groups[0].key == long_video and [g.key for g in groups].count(long_video) == 1
    # the other points have no source: each is a group of its own, keyed by its id
    assert all(g.hits[0].source is None and g.key == g.hits[0].id for g in groups[1:])
    hits = groups[0].hits
    assert len(hits) == 5 and hits[0].payload["segment_index"] == segment
    assert (hits[0].payload["start_s"], hits[0].payload["end_s"]) == (start, end)
    assert hits[0].stream_scores["video"] > 0.999
    assert hits[0].score - hits[1].score > 0.1  # a real margin, not a tie broken by order
    assert max(h.stream_scores["video"] for h in hits[1:]) < 0.8
    flat = retriever.search(Content(video=long_video, start_s=start, end_s=end), k=3)
    assert flat[0].id == hits[0].id and flat[1].payload["source"] == long_video  # search is flat


def test_stored_segment_vectors_are_the_windows_embedded_alone(
    indexed: tuple[OmniRetriever, list[str]], long_video: str
) -> None:
    retriever, added = indexed
    [stored] = retriever.store.get([added[4]])
    assert stored is not None
    expected = retriever.embedder.embed_document_streams(
        [Content(audio=long_video, start_s=480.0, end_s=600.0)]
    )
    np.testing.assert_allclose(stored.vectors["audio"], expected[0]["audio"], atol=1e-5)


def test_re_adding_is_a_no_op_and_a_new_plan_replaces_stale_segments(
    indexed: tuple[OmniRetriever, list[str]], long_video: str
) -> None:
    retriever, added = indexed
    again = retriever.add(
        [Content(audio=long_video, video=long_video)], segment=SegmentPolicy(window_s=WINDOW_S)
    )
    assert again.added == [] and again.unchanged == added[:5]
    wave = np.cos(np.arange(16000 * 40) / 7.0).astype(np.float32)
    store = OmniStore("replan")
    other = OmniRetriever(retriever.embedder, store)
    first = other.add(
        [Content(audio=wave)], ids=["w"], segment=SegmentPolicy(window_s=10, min_segment_s=5)
    ).added
    assert first == ["w#0", "w#1", "w#2", "w#3"]
    second = other.add(
        [Content(audio=wave)], ids=["w"], segment=SegmentPolicy(window_s=20, min_segment_s=5)
    ).added
    assert second == ["w#0", "w#1"]  # ranges changed: re-embedded, not skipped
    assert store.get(["w#2", "w#3"]) == [None, None]  # and the old plan's extra segments are gone
    assert [p.payload["end_s"] for p in store.get(second) if p] == [20.0, 40.0]
    assert other.add([Content(audio=wave)], ids=["w"], segment=False).added == [
        "w"
    ]  # unsegmented: the plain id
    assert store.get(["w#0", "w#1"]) == [None, None]  # and the segments it replaces are gone
    assert store.count() == 1
    assert other.add([Content(audio=wave)], ids=["w"], segment=SegmentPolicy(window_s=20)).added == [
        "w#0",
        "w#1",
    ]
    assert store.get(["w"]) == [None] and store.count() == 2  # segmented again: the whole point goes
    # deleting by the item's id removes its segments, and nothing else
    other.add([Content(audio=wave[:16000])], ids=["short"], segment=SegmentPolicy(window_s=20))
    with pytest.raises(TypeError, match="not one string"):
        other.delete("w")  # type: ignore[arg-type]
    assert other.delete(["w", "missing", "w"]) == 2
    assert [p.id for p in store.scroll()] == ["short"]
    assert other.delete(["short"]) == 1 and store.count() == 0
    store.close()
