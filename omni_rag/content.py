"""The unit of input: one item with any mix of text, image, audio and video.

A ``Content`` only *names* its media (a path, URL, array or tensor); decoding
happens later in :mod:`omni_rag.media`, so building thousands of items is
cheap and a bad file fails with its item's index instead of at construction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from omni_rag.errors import NotAListError, OmniInputError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray | torch.Tensor
    AudioInput = str | os.PathLike[str] | np.ndarray | torch.Tensor
    VideoInput = str | os.PathLike[str] | np.ndarray | torch.Tensor
else:
    ImageInput = AudioInput = VideoInput = Any

#: The modality fields of a :class:`Content`, in the order they enter the model's sequence.
MODALITIES: tuple[str, ...] = ("text", "image", "video", "audio")


@dataclass(frozen=True)
class Content:
    """One item to embed: any combination of text, image, audio and video.

    Args:
        text: Plain text; must not be blank when given.
        image: Path, URL, ``PIL.Image``, ``np.ndarray`` HWC uint8 or torch tensor CHW.
        audio: Path or URL of any container with an audio track, or a 1-D float waveform at 16 kHz.
        video: Path or URL, ``np.ndarray`` (T, H, W, 3) uint8 or torch tensor (T, C, H, W).
        start_s: Start of the time window (seconds) into the audio/video sources; ``None`` = from the start.
        end_s: End of the time window (seconds); ``None`` = to the end.
        metadata: Caller data carried along to the store; never embedded.
    """

    text: str | None = None
    image: ImageInput | None = None
    audio: AudioInput | None = None
    video: VideoInput | None = None
    start_s: float | None = None
    end_s: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Fields that are set, in sequence order."""
        return tuple(m for m in MODALITIES if getattr(self, m) is not None)

    def with_only(self, *fields: str) -> Content:
        """A copy keeping only ``fields`` (used to embed an item's streams separately)."""
        kept: dict[str, Any] = {m: (getattr(self, m) if m in fields else None) for m in MODALITIES}
        return replace(self, **kept)

    def validate(self, index: int | None = None) -> Content:
        """Cheap structural checks; media are checked when decoded.

        Raises:
            OmniInputError: naming ``index`` and the offending field.
        """
        if not self.modalities:
            raise OmniInputError("empty item: set at least one of text, image, audio, video", index=index)
        if self.text is not None:
            if not isinstance(self.text, str):
                raise OmniInputError(
                    f"unsupported type {type(self.text).__name__}; text must be str",
                    index=index,
                    field="text",
                )
            if not self.text.strip():
                raise OmniInputError("empty text", index=index, field="text")
        for name in ("start_s", "end_s"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise OmniInputError(f"{name} must be a non-negative number, got {value!r}", index=index)
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise OmniInputError(
                f"end_s ({self.end_s}) must be greater than start_s ({self.start_s})", index=index
            )
        if (self.start_s is not None or self.end_s is not None) and self.audio is None and self.video is None:
            raise OmniInputError("start_s/end_s need an audio or video source", index=index)
        return self

    def describe(self) -> str:
        """A short human-readable summary (used where a framework needs ``page_content``)."""
        parts = []
        if self.text is not None:
            parts.append(self.text if len(self.text) <= 200 else self.text[:197] + "...")
        for name in ("image", "video", "audio"):
            value = getattr(self, name)
            if value is not None:
                shown = os.fspath(value) if isinstance(value, (str, os.PathLike)) else type(value).__name__
                parts.append(f"[{name}: {shown}]")
        if self.start_s is not None or self.end_s is not None:
            parts.append(
                f"[{self.start_s or 0:.1f}s-{'end' if self.end_s is None else f'{self.end_s:.1f}s'}]"
            )
        return " ".join(parts)


ItemLike = str | Content | Mapping[str, Any]


def as_content(item: ItemLike, index: int | None = None) -> Content:
    """Coerce what callers pass into a validated :class:`Content`.

    A plain ``str`` means text; a mapping is read as ``Content`` keyword arguments.

    Raises:
        OmniInputError: for unsupported types, unknown keys and failed validation.
    """
    if isinstance(item, Content):
        return item.validate(index)
    if isinstance(item, str):
        return Content(text=item).validate(index)
    if isinstance(item, Mapping):
        known = {"text", "image", "audio", "video", "start_s", "end_s", "metadata"}
        unknown = sorted(set(item) - known)
        if unknown:
            raise OmniInputError(f"unknown keys {unknown}; expected some of {sorted(known)}", index=index)
        return Content(**item).validate(index)
    raise OmniInputError(
        f"unsupported type {type(item).__name__}; pass a str (text), a Content or a dict of its fields",
        index=index,
    )


def require_list(value: object, what: str = "items", of: str = "items") -> None:
    """Refuse one item where a list is expected: a string would be split into one item per character.

    Raises:
        NotAListError: ``value`` is a string, bytes, a path, a dict, a :class:`Content`, or not iterable.
    """
    single = isinstance(value, (str, bytes, os.PathLike, Mapping, Content))
    if single or not isinstance(value, Iterable):
        raise NotAListError(
            f"{what} must be a list of {of}, got one {type(value).__name__}: "
            f"pass a list, e.g. [{value!r:.60}]",
            field=what,
        )
