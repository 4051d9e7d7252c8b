"""The model card's recipe, verbatim: the reference ``OmniEmbedder`` is measured against.

Kept in the package (not only in tests) so users can check parity on their own
checkpoint and data, and so the benchmark compares against the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: The card's processor kwargs (also the paper's Table 7).
CARD_VIDEOS_KWARGS: dict[str, Any] = {
    "min_pixels": 32 * 14 * 14,
    "max_pixels": 64 * 28 * 28,
    "use_audio_in_video": False,
}


def size_form(videos_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The card's ``min_pixels``/``max_pixels`` as the ``size`` dict transformers 5 asks for.

    Same values, same frames (the processor maps one onto the other); the old spelling is
    deprecated and slated for removal, and the card's recipe would then stop bounding pixels.
    """
    kwargs = dict(videos_kwargs)
    size = dict(kwargs.pop("size", None) or {})
    if "min_pixels" in kwargs:
        size["shortest_edge"] = kwargs.pop("min_pixels")
    if "max_pixels" in kwargs:
        size["longest_edge"] = kwargs.pop("max_pixels")
    if size:
        kwargs["size"] = size
    return kwargs


CARD_TEXT_KWARGS: dict[str, Any] = {"truncation": True, "padding": True, "max_length": 204800}
CARD_AUDIO_KWARGS: dict[str, Any] = {"max_length": 2048000}


def card_conversation(prompt: str, **parts: Any) -> list[dict[str, Any]]:
    """One item as the card writes it: the prompt and text first, then image, video, audio."""
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt + parts.pop("text", "")}]
    for name in ("image", "video", "audio"):
        if name in parts:
            content.append({"type": name, name: parts[name]})
    return [{"role": "user", "content": content}]


@torch.no_grad()
def card_embed(model: Any, processor: Any, conversations: Sequence[list[dict[str, Any]]]) -> np.ndarray:
    """The card's Usage section for a batch of conversations; returns normalised float32 rows.

    Media paths go through ``qwen_omni_utils.process_mm_info`` exactly as in the card, so
    they need its readers (which fail here for mp4: pass decoded arrays instead). The video
    kwargs go in transformers' current spelling (:func:`size_form`): the same pixel bounds.
    """
    from qwen_omni_utils import process_mm_info

    conversations = list(conversations)
    texts = processor.apply_chat_template(conversations, add_generation_prompt=False, tokenize=False)
    audio, images, videos = process_mm_info(conversations, use_audio_in_video=False)
    batch = processor(
        text=texts,
        images=images,
        videos=videos,
        audio=audio,
        return_tensors="pt",
        text_kwargs=CARD_TEXT_KWARGS,
        videos_kwargs=size_form(CARD_VIDEOS_KWARGS),
        audio_kwargs=CARD_AUDIO_KWARGS,
    )
    batch = {k: v.to(model.device) for k, v in batch.items()}
    last_hidden_states = model(**batch, output_hidden_states=True).hidden_states[-1]
    attention_mask = batch["attention_mask"]
    masked = last_hidden_states.masked_fill(~attention_mask[..., None].bool(), 0.0)
    embedding = masked.sum(dim=1) / attention_mask.sum(dim=1)[..., None]
    return F.normalize(embedding, dim=-1).float().cpu().numpy()
