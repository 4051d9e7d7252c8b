"""Packed batches for the thinker: every item's tokens back to back in one row, no padding.

A padded batch of a 300-token and a 3,000-token item computes 6,000 positions for 3,300 real
ones; packed, it computes 3,300. What keeps the vectors identical to the padded path:

- **Positions**: Qwen2.5-Omni rotates with 3-D mrope positions (time, height, width) that
  ``get_rope_index`` computes per item from its token ids and media grids. They are computed
  on the padded batch exactly as the model would, then each item's own positions are gathered
  into the row, so an item sees the same rotations packed or not. A fourth, 1-D row restarting
  at 0 per item is prepended: transformers reads it as the packing boundaries.
- **Attention**: with flash-attention 2, transformers turns those restarting positions into
  ``cu_seqlens`` and calls the varlen kernel, causal or not as the layers are (bidirectional for
  the official checkpoint). Elsewhere (SDPA, e.g. on the CPU, where the tests run) a
  block-diagonal mask keeps items from attending to each other; it costs ``T^2`` memory, so
  it is a fallback for checking parity, not a speed-up.
- **Pooling**: a masked mean per item over its own segment, summed in float32.

The towers (vision, audio) already run unpadded with their own ``cu_seqlens``; their outputs
fill the placeholder tokens in order, which packing preserves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

#: Attention implementations a packed row can run under.
PACKABLE_ATTENTION = frozenset({"flash_attention_2", "sdpa"})


@dataclass
class PackedBatch:
    """A batch as one row.

    Attributes:
        inputs: Model inputs without ``attention_mask``: ``input_ids`` is ``(1, total)``, the
            towers' inputs are as collated.
        position_ids: ``(4, 1, total)``: per-item text positions, then the 3-D mrope positions.
        lengths: Tokens of each item, in row order.
    """

    inputs: dict[str, torch.Tensor]
    position_ids: torch.Tensor
    lengths: list[int]

    def map(self, fn: Callable[[str, torch.Tensor], torch.Tensor]) -> PackedBatch:
        """The same batch with ``fn(name, tensor)`` applied to every tensor (pinning, moving)."""
        inputs = {k: fn(k, v) for k, v in self.inputs.items()}
        return PackedBatch(inputs, fn("position_ids", self.position_ids), self.lengths)


def pack(batch: dict[str, torch.Tensor], rope_index: Callable[..., Any]) -> PackedBatch:
    """Turn a padded (collated) batch into one packed row, keeping each item's positions.

    Args:
        batch: The padded batch (``input_ids``, ``attention_mask`` and the towers' inputs).
        rope_index: The thinker's ``get_rope_index`` (pure: reads only the config).
    """
    mask = batch["attention_mask"].bool()
    lengths = [int(n) for n in mask.sum(dim=1).tolist()]
    feature_mask = batch.get("feature_attention_mask")
    positions, _deltas = rope_index(
        batch["input_ids"],
        batch.get("image_grid_thw"),
        batch.get("video_grid_thw"),
        batch["attention_mask"],
        False,  # use_audio_in_video: the card's setting, as the model's own forward passes it
        feature_mask.sum(dim=1) if feature_mask is not None else None,
        batch.get("video_second_per_grid"),
    )
    mrope = positions[:, mask].unsqueeze(1)
    text = torch.cat([torch.arange(n, dtype=mrope.dtype) for n in lengths]).view(1, 1, -1)
    inputs = {k: v for k, v in batch.items() if k != "attention_mask"}
    inputs["input_ids"] = batch["input_ids"][mask].unsqueeze(0)
    return PackedBatch(inputs, torch.cat([text, mrope.to(text.device)]), lengths)


def block_mask(lengths: list[int], *, causal: bool, device: torch.device) -> torch.Tensor:
    """``(1, 1, T, T)`` boolean mask: each token attends to its own item only (and only backwards
    when ``causal``); what flash-attention's ``cu_seqlens`` express without materialising it."""
    sizes = torch.tensor(lengths, device=device)
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=device), sizes)
    mask = owner[:, None] == owner[None, :]
    if causal:
        mask = mask.tril()
    return mask[None, None]


def packed_last_hidden_state(thinker: Any, batch: PackedBatch) -> torch.Tensor:
    """Run the thinker on a packed row; returns ``(1, total, hidden)``."""
    text_model = thinker.language_model
    implementation = text_model.config._attn_implementation
    if implementation not in PACKABLE_ATTENTION:
        raise ValueError(f"packed batches need flash_attention_2 or sdpa attention, not {implementation!r}")
    mask: torch.Tensor | None = None
    if implementation != "flash_attention_2":
        causal = bool(getattr(text_model.layers[0].self_attn, "is_causal", True))
        mask = block_mask(batch.lengths, causal=causal, device=batch.position_ids.device)
    masks = {"full_attention": mask, "sliding_attention": mask}
    output = thinker(**batch.inputs, attention_mask=masks, position_ids=batch.position_ids, use_cache=False)
    return output.last_hidden_state


def segment_mean(hidden: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Mean of each item's segment of a packed row, in float32 like :func:`..pooling.masked_mean`."""
    parts = hidden[0].to(torch.float32).split(lengths)
    return torch.stack([part.mean(dim=0) for part in parts])
