"""Items to model inputs for the Qwen2.5-Omni thinker, exactly as the model card builds them.

Each item is processed on its own (chat template, ``qwen_omni_utils`` resizing,
the checkpoint's processor with the card's kwargs) and batches are collated
afterwards. Processing alone is what lets us (a) name the item that fails,
(b) know every item's token count before batching, so batches are sorted by
length and an item over the context is refused instead of silently cut, and
(c) avoid the card's padding of every audio clip to 128 s.

Text alone takes a shorter way to the same tokens (:class:`TextTemplate`): the processor's
per-call work cost 0.7 ms a query, more than a small batch's forward pass per item.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from qwen_omni_utils.v2_5 import fetch_image

from omni_rag import media
from omni_rag.card import CARD_VIDEOS_KWARGS, size_form
from omni_rag.content import Content
from omni_rag.errors import MediaError, OmniInputError

#: Zero samples appended after each clip before feature extraction. The card pads every
#: clip with zeros to 128 s; the STFT windows of the clip's last frames (n_fft 400,
#: centred) must see those zeros, not the reflection used at a signal's end, or the
#: features differ. 400 samples cover the window; the extra frames are masked out.
AUDIO_TAIL_SAMPLES = 400

_PAD_LAST_DIM = {"input_features", "feature_attention_mask"}
_PAD_SEQUENCE = {"input_ids", "attention_mask"}


#: Two stand-ins for a message's text (edge whitespace, both cases, Jinja-like braces): the chat
#: template renders text verbatim when each comes back once and the parts around them agree.
_PROBES = (" \n\x00omni-rag Probe A {{ x }}\x00\t ", " \n\x00omni-rag Probe B {{ x }}\x00\t ")


@dataclass(frozen=True)
class TextTemplate:
    """The chat template around a text-only message, rendered once: ``prefix + text + suffix``.

    Rendering the Jinja template costs 0.1 ms a query; for a text-only message it only wraps the
    text, which :meth:`of` checks by rendering two different probes.
    """

    prefix: str
    suffix: str

    @classmethod
    def of(cls, render: Any) -> TextTemplate | None:
        """The split of ``render(text)`` around its text, or ``None`` if the text is not kept verbatim."""
        splits = set()
        for probe in _PROBES:
            rendered = render(probe)
            if not isinstance(rendered, str) or rendered.count(probe) != 1:
                return None
            splits.add(tuple(rendered.split(probe)))
        if len(splits) != 1:
            return None
        prefix, suffix = splits.pop()
        return cls(prefix, suffix)


@dataclass
class OmniInputs:
    """Processor output for one item (batch dimension 1)."""

    features: dict[str, torch.Tensor]
    num_tokens: int
    fields: tuple[str, ...] = field(default_factory=tuple)


class OmniProcessor:
    """Turns :class:`Content` into Qwen2.5-Omni inputs with the card's recipe.

    Args:
        processor: The checkpoint's ``AutoProcessor`` (a ``Qwen2_5OmniProcessor``).
        max_tokens: The model's context; longer items raise unless ``truncate``.
        prompts: Prefix of the first text of every item, per kind (``None``/"" disables it).
        videos_kwargs: Processor video kwargs (the card's by default).
        video_options: ``qwen_omni_utils`` video element keys (fps, max_frames, ...).
        truncate: Cut text-only items to the context instead of raising.
    """

    def __init__(
        self,
        processor: Any,
        *,
        max_tokens: int,
        prompts: Mapping[str, str | None],
        videos_kwargs: Mapping[str, Any] | None = None,
        video_options: Mapping[str, Any] | None = None,
        truncate: bool = False,
    ) -> None:
        self.processor = processor
        self.max_tokens = max_tokens
        self.prompts = dict(prompts)
        self.videos_kwargs = size_form(CARD_VIDEOS_KWARGS if videos_kwargs is None else videos_kwargs)
        self.video_options = dict(video_options or {})
        self.truncate = truncate
        tokenizer = processor.tokenizer
        self.pad_token_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.padding_side: str = "left"
        # A fast tokenizer's truncation setting is state on the Rust object: switching it while
        # another thread encodes fails ("Already borrowed"). Only ``truncate`` switches it (per
        # item: text-only items truncate, others not), so only then are processor calls serialised.
        self._tokenizer_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if truncate else contextlib.nullcontext()
        )
        self._template: TextTemplate | None = TextTemplate.of(
            lambda text: processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "text", "text": text}]}],
                add_generation_prompt=False,
                tokenize=False,
            )
        )
        # text holding one of these tokens goes through the processor, which expands or refuses it
        self._special = tuple(tokenizer.get_added_vocab())

    # -- one item -----------------------------------------------------------------------------

    def conversation(self, item: Content, kind: str) -> list[dict[str, Any]]:
        """The card's message layout: the prompt and text first, then image, video, audio."""
        parts: list[dict[str, Any]] = []
        text = (self.prompts.get(kind) or "") + (item.text or "")
        if text:
            parts.append({"type": "text", "text": text})
        for name in ("image", "video", "audio"):
            if getattr(item, name) is not None:
                parts.append({"type": name, name: name})
        return [{"role": "user", "content": parts}]

    def load_media(self, item: Content, index: int) -> dict[str, Any]:
        """Decode the item's media into the arrays ``process_mm_info`` would produce."""
        loaded: dict[str, Any] = {}
        field_name = "item"
        try:
            if item.image is not None:
                field_name = "image"
                loaded["images"] = [fetch_image({"image": media.load_image(item.image)})]
            if item.video is not None:
                field_name = "video"
                options = dict(self.video_options)
                if item.start_s is not None:
                    options["video_start"] = float(item.start_s)
                if item.end_s is not None:
                    options["video_end"] = float(item.end_s)
                loaded["videos"] = [media.load_video(item.video, options=options).frames]
            if item.audio is not None:
                field_name = "audio"
                loaded["audio"] = [media.load_audio(item.audio, start_s=item.start_s, end_s=item.end_s)]
        except MediaError as error:
            raise OmniInputError(str(error), index=index, field=field_name) from error
        except (ValueError, OSError, RuntimeError, AssertionError) as error:
            # qwen_omni_utils' resizing raises bare ValueError/AssertionError (e.g. aspect ratio > 200).
            raise OmniInputError(f"{type(error).__name__}: {error}", index=index, field=field_name) from error
        return loaded

    def __call__(self, item: Content, *, kind: str, index: int) -> OmniInputs:
        """Process one item; the result has batch dimension 1."""
        text = self._plain_text(item, kind)
        if text is not None:
            features = self._tokenize(text)
            return self._checked(features, item, index)
        return self.process(item, kind=kind, index=index)

    def process(self, item: Content, *, kind: str, index: int) -> OmniInputs:
        """Process one item through the checkpoint's processor, as the model card does."""
        loaded = self.load_media(item, index)
        text = self.processor.apply_chat_template(
            self.conversation(item, kind), add_generation_prompt=False, tokenize=False
        )
        audio_kwargs: dict[str, Any] = {}
        if "audio" in loaded:
            audio_kwargs["max_length"] = len(loaded["audio"][0]) + AUDIO_TAIL_SAMPLES
        text_kwargs = self._text_kwargs(item.modalities == ("text",))
        try:
            with self._tokenizer_lock:
                features = self.processor(
                    text=[text],
                    images=loaded.get("images"),
                    videos=loaded.get("videos"),
                    audio=loaded.get("audio"),
                    return_tensors="pt",
                    text_kwargs=text_kwargs,
                    videos_kwargs=dict(self.videos_kwargs),
                    audio_kwargs=audio_kwargs,
                )
        except (ValueError, RuntimeError) as error:
            field_name = item.modalities[-1] if len(item.modalities) == 1 else "item"
            raise OmniInputError(f"processor failed: {error}", index=index, field=field_name) from error
        return self._checked(dict(features), item, index)

    def _plain_text(self, item: Content, kind: str) -> str | None:
        """The templated text of a text-only item the tokenizer alone can take, else ``None``."""
        if item.modalities != ("text",) or self._template is None:
            return None
        text = (self.prompts.get(kind) or "") + (item.text or "")
        if not text or any(token in text for token in self._special):
            return None
        return self._template.prefix + text + self._template.suffix

    def _text_kwargs(self, text_only: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"padding": False, "truncation": False}
        if self.truncate and text_only:
            kwargs.update(truncation=True, max_length=self.max_tokens)
        return kwargs

    def _tokenize(self, text: str) -> dict[str, torch.Tensor]:
        """What the processor returns for text alone: its tokenizer's output, left padding side."""
        with self._tokenizer_lock:
            encoded = self.processor.tokenizer(
                [text], return_tensors="pt", padding_side="left", **self._text_kwargs(True)
            )
        return dict(encoded)

    def _checked(self, features: dict[str, torch.Tensor], item: Content, index: int) -> OmniInputs:
        """The item's inputs, refused when longer than the model's context."""
        text_only = item.modalities == ("text",)
        num_tokens = int(features["input_ids"].shape[1])
        if num_tokens > self.max_tokens:
            advice = (
                "pass truncate=True to cut it"
                if text_only
                else "split the media into segments (start_s/end_s)"
            )
            raise OmniInputError(
                f"{num_tokens} tokens exceed the model's context of {self.max_tokens}; {advice}",
                index=index,
                field="text" if text_only else "item",
            )
        return OmniInputs(features=features, num_tokens=num_tokens, fields=item.modalities)

    # -- a batch -------------------------------------------------------------------------------

    def collate(self, items: Sequence[OmniInputs]) -> dict[str, torch.Tensor]:
        """Pad token sequences (left, like the checkpoint's processor) and audio frames; concat the rest."""
        keys: list[str] = []
        for item in items:
            keys.extend(k for k in item.features if k not in keys)
        batch: dict[str, torch.Tensor] = {}
        seq_len = max(item.num_tokens for item in items)
        for key in keys:
            values = [item.features[key] for item in items if key in item.features]
            if key in _PAD_SEQUENCE:
                pad_value = self.pad_token_id if key == "input_ids" else 0
                batch[key] = torch.cat([_pad_left(v, seq_len, pad_value) for v in values])
            elif key in _PAD_LAST_DIM:
                frames = max(v.shape[-1] for v in values)
                batch[key] = torch.cat([_pad_right(v, frames) for v in values])
            else:
                batch[key] = torch.cat(
                    [torch.as_tensor(np.asarray(v)) if not torch.is_tensor(v) else v for v in values]
                )
        return batch


def _pad_left(tensor: torch.Tensor, length: int, value: int) -> torch.Tensor:
    missing = length - tensor.shape[-1]
    if missing == 0:
        return tensor
    pad = torch.full((*tensor.shape[:-1], missing), value, dtype=tensor.dtype)
    return torch.cat([pad, tensor], dim=-1)


def _pad_right(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[-1]
    if missing == 0:
        return tensor
    pad = torch.zeros((*tensor.shape[:-1], missing), dtype=tensor.dtype)
    return torch.cat([tensor, pad], dim=-1)
