"""Cut long audio and video into timestamped segments, each embedded (and late-fused) on its own.

The model sees at most 32,768 tokens, the model card never feeds it more than 128 s of audio, and
``qwen_omni_utils`` samples 2 fps only up to 768 frames. A long recording therefore becomes several
:class:`~omni_rag.content.Content` items that name the same files with consecutive
``start_s``/``end_s`` windows: the media layer seeks to each window, so indexing never decodes a
whole recording at once, and a search answers "which video, and where in it".

Nothing here truncates: a plan always covers the whole ``[start_s, end_s]`` span of an item.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from omni_rag.content import Content
from omni_rag.errors import MediaError, OmniInputError

#: Model context (Omni-Embed-Nemotron-3B, paper Table 7).
CONTEXT_TOKENS: Final = 32768
#: Audio tokens per second: 16 kHz, hop 160 -> 100 feature frames/s, pooled 4x by the audio tower.
AUDIO_TOKENS_PER_S: Final = 25
#: Upper bound of video tokens per second: 2 fps, temporal patch 2 -> one grid step per second, and the
#: card's ``max_pixels = 64 * 28 * 28`` -> at most 64 merged tokens per step.
VIDEO_TOKENS_PER_S: Final = 64
#: Frames per second ``qwen_omni_utils`` samples (``FPS``) and the most it samples (``FPS_MAX_FRAMES``).
SAMPLE_FPS: Final = 2.0
MAX_SAMPLED_FRAMES: Final = 768
#: The card's ``audio_kwargs.max_length = 2,048,000`` samples at 16 kHz: the longest audio it ever embeds.
CARD_AUDIO_MAX_S: Final = 128.0
#: A stream whose source covers less than this of a segment is left out of that segment (video needs
#: qwen's minimum of 2 sampled frames, i.e. 1 s at 2 fps).
MIN_STREAM_S: Final = 1.0
#: Sample rate of waveform arrays (see ``Content.audio``).
ARRAY_SAMPLE_RATE: Final = 16000


@dataclass(frozen=True)
class SegmentPolicy:
    """How long media is cut into segments.

    The defaults follow from the token budget of each modality, so that every segment fits the
    context with a wide margin and stays inside what the model card ever feeds the model:

    * ``window_s = 60``: video <= 60 x 64 = 3,840 tokens and audio 60 x 25 = 1,500 tokens (each
      stream is embedded alone, but even both in one sequence, 5,340 tokens, is 16 % of 32,768);
      120 sampled frames, far under qwen's 768-frame cap, so sampling really is 2 fps; 60 s of
      audio, under the card's 128 s. The hard limits would allow more (128 s from the card's
      audio, 384 s from the frame cap, 512 s from the context for video) but a mean-pooled vector
      over a minute still points at one scene or topic, a hit then locates content to the minute,
      and one segment's frames (120 x <= 50,176 px, about 72 MB of float32 pixels) bound memory.
    * ``overlap_s = 0``: every second is embedded once (cost = duration) and a source's segments
      partition it, so grouped results never show the same moment twice. An event cut by a
      boundary still lands mostly in one of its two neighbours, and grouped search returns several
      segments per source; set an overlap (e.g. 10 s) to trade ``window / (window - overlap)``
      times the compute for robustness at boundaries.
    * ``min_segment_s = 15``: a tail shorter than this is merged into the previous segment rather
      than embedded alone (a few seconds of content would rank on noise). The longest segment is
      then under ``window_s + min_segment_s`` = 75 s: <= 4,800 video tokens, 1,875 audio tokens,
      150 frames, still under the card's 128 s of audio.

    Args:
        window_s: Length of a segment in seconds.
        overlap_s: Seconds each segment shares with the previous one; ``0 <= overlap_s < window_s``.
        min_segment_s: Shortest new content a last segment may add; ``0 < min_segment_s <= window_s``.

    Raises:
        ValueError: for values outside those ranges.
    """

    window_s: float = 60.0
    overlap_s: float = 0.0
    min_segment_s: float = 15.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise ValueError(f"window_s must be a positive number, got {self.window_s}")
        if not (math.isfinite(self.overlap_s) and 0 <= self.overlap_s < self.window_s):
            raise ValueError(f"overlap_s must be in [0, window_s={self.window_s}), got {self.overlap_s}")
        if not (math.isfinite(self.min_segment_s) and 0 < self.min_segment_s <= self.window_s):
            raise ValueError(
                f"min_segment_s must be in (0, window_s={self.window_s}], got {self.min_segment_s}"
            )

    @property
    def hop_s(self) -> float:
        """Distance between the starts of consecutive segments."""
        return self.window_s - self.overlap_s

    @property
    def max_segment_s(self) -> float:
        """Upper bound of any segment's length: a window plus a merged tail (exclusive)."""
        return self.window_s + self.min_segment_s

    def token_bounds(self) -> dict[str, int]:
        """Upper bounds of the tokens of one segment's streams (media only, without the prompt).

        Lets callers with another context or processor settings check a custom policy.
        """
        longest = self.max_segment_s
        return {
            "audio": math.ceil(longest * AUDIO_TOKENS_PER_S),
            "video": math.ceil(longest * VIDEO_TOKENS_PER_S),
            "frames": math.ceil(longest * SAMPLE_FPS),
        }


#: The policy :meth:`OmniRetriever.add <omni_rag.retriever.OmniRetriever.add>` uses by default.
DEFAULT_POLICY: Final = SegmentPolicy()


def plan_segments(duration_s: float, policy: SegmentPolicy = DEFAULT_POLICY) -> list[tuple[float, float]]:
    """Segment bounds ``(start_s, end_s)`` covering ``[0, duration_s]``.

    Segments start every ``policy.hop_s`` and last ``policy.window_s``; the last one ends at
    ``duration_s``. When that last segment would add less than ``policy.min_segment_s`` beyond its
    predecessor, it is dropped and the predecessor extended to ``duration_s`` instead, so no tail
    is tiny and nothing is cut. Media no longer than a window (or a window plus a short tail) is
    one segment. Bounds are ``k * hop`` (not accumulated), rounded to the microsecond, so they are
    stable across runs and ids built from them stay the same.

    Raises:
        ValueError: ``duration_s`` is not a positive finite number.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number, got {duration_s}")
    bounds: list[tuple[float, float]] = []
    k = 0
    while True:
        start = round(k * policy.hop_s, 6)
        bounds.append((start, min(round(start + policy.window_s, 6), duration_s)))
        if start + policy.window_s >= duration_s:
            break
        k += 1
    if len(bounds) > 1 and duration_s - bounds[-2][1] < policy.min_segment_s:
        bounds.pop()
        bounds[-1] = (bounds[-1][0], duration_s)
    return bounds


@dataclass(frozen=True)
class ItemPlan:
    """What :func:`plan_item` decided for one item.

    Attributes:
        segments: The items to embed: ``[content]`` itself when it is not segmented.
        duration_s: Seconds of media the original item spans, ``None`` when unknown or not timed.
        segmented: Whether the item was cut (each segment has ``segment_index`` in its metadata).
    """

    segments: list[Content]
    duration_s: float | None
    segmented: bool = False


def _array_seconds(value: Any, name: str) -> float | None:
    """Length of an audio waveform; ``None`` for video arrays (they carry no frame rate)."""
    if name == "video":
        return None
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != 1 or shape[0] == 0:
        return None  # the embedder reports the bad array with its own message
    return float(shape[0]) / ARRAY_SAMPLE_RATE


def _source_seconds(content: Content, index: int | None) -> dict[str, float | None]:
    """Duration of each timed source (``audio``/``video``) of ``content``, probing paths once each."""
    from omni_rag import media  # lazy: keeps ``import omni_rag.segments`` free of PyAV/torch

    found: dict[str, float | None] = {}
    probed: dict[str, float | None] = {}
    for name in ("video", "audio"):
        value = getattr(content, name)
        if value is None:
            continue
        if not isinstance(value, (str, os.PathLike)):
            found[name] = _array_seconds(value, name)
            continue
        key = os.fspath(value)
        if key not in probed:
            try:
                probed[key] = media.probe(key).duration_s
            except MediaError as error:
                raise OmniInputError(str(error), index=index, field=name) from error
        found[name] = probed[key]
    return found


def plan_item(
    content: Content,
    *,
    source_duration_s: float | None = None,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    index: int | None = None,
) -> ItemPlan:
    """Split one item into timestamped segments when its audio/video is longer than a window.

    See :func:`segment_item` for the rules; this also returns the item's duration, which
    :class:`~omni_rag.retriever.OmniRetriever` uses to bound how much media it embeds at once.

    Raises:
        OmniInputError: a media path cannot be probed (missing file, failed download).
    """
    timed = content.audio is not None or content.video is not None
    if policy is None or not timed:
        return ItemPlan([content], None)
    if content.video is not None and not isinstance(content.video, (str, os.PathLike)):
        # qwen keeps every frame of a frame array and ignores video_start/video_end for it, so a
        # window cannot be applied: the caller slices arrays, or the context check refuses them.
        return ItemPlan([content], None)
    if source_duration_s is not None:
        if not (math.isfinite(source_duration_s) and source_duration_s > 0):
            raise ValueError(f"source_duration_s must be a positive number, got {source_duration_s}")
        durations: Mapping[str, float | None] = {
            name: source_duration_s for name in ("audio", "video") if getattr(content, name) is not None
        }
    else:
        durations = _source_seconds(content, index)
    known = [d for d in durations.values() if d is not None and d > 0]
    if len(known) != len(durations):
        return ItemPlan([content], None)  # unknown duration: not cut; pass source_duration_s to cut it
    start = float(content.start_s or 0.0)
    end = min(float(content.end_s), max(known)) if content.end_s is not None else max(known)
    if end <= start:
        return ItemPlan([content], None)  # an empty window: the embedder reports it
    plan = plan_segments(end - start, policy)
    if len(plan) == 1:
        return ItemPlan([content], end - start)
    segments = []
    for k, (s, e) in enumerate(plan):
        seg_start, seg_end = round(start + s, 6), round(start + e, 6)
        # Sources of different lengths (an audio file beside a video file): a stream with no
        # media in this window is left out instead of failing the segment.
        dropped = {
            name: None for name, d in durations.items() if d is not None and d - seg_start < MIN_STREAM_S
        }
        if len(dropped) == len(durations):
            dropped = {}  # keep the streams rather than an item with no timed media
        metadata = {**content.metadata, "segment_index": k}
        segments.append(replace(content, start_s=seg_start, end_s=seg_end, metadata=metadata, **dropped))
    return ItemPlan(segments, end - start, segmented=True)


def segment_item(
    content: Content,
    *,
    source_duration_s: float | None = None,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    index: int | None = None,
) -> list[Content]:
    """The items to embed for ``content``: itself, or one per segment of its audio/video.

    Rules:

    * text and image items, ``policy=None`` and media no longer than one window (see
      :func:`plan_segments`) come back as ``[content]``, untouched (so their ids do not change);
    * otherwise each segment is a copy of ``content`` with the *same* ``start_s``/``end_s`` for its
      audio and its video, so the two streams are late-fused per segment, and ``metadata``
      extended with ``segment_index`` (0, 1, ...). Text and image are kept in every segment;
    * an item that already has ``start_s``/``end_s`` is segmented within that window;
    * durations come from :func:`omni_rag.media.probe` for paths (URLs are downloaded to probe) and
      from the length for waveform arrays (16 kHz). Video arrays are never segmented: they have no
      frame rate and qwen ignores windows for frame lists; slice them yourself. An unknown
      duration leaves the item whole; pass ``source_duration_s`` to segment it anyway.

    Nothing is truncated: an unsegmented item over the context is refused by the embedder.

    Args:
        content: The item.
        source_duration_s: Duration of its media, instead of probing (applies to audio and video).
        policy: Window, overlap and tail rules; ``None`` disables segmentation.
        index: The item's position in the caller's batch, for error messages.

    Raises:
        OmniInputError: a media path cannot be probed (missing file, failed download).
    """
    return plan_item(content, source_duration_s=source_duration_s, policy=policy, index=index).segments
