"""Pooling: masked mean of the last hidden state, then L2 normalisation (the card's recipe)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of real tokens, every token of the sequence included.

    Sums in float32 even for a bf16 model: a 20k-token video summed in bf16 loses
    precision the card's recipe did not intend to trade for speed.
    """
    mask = attention_mask.to(device=hidden.device, dtype=torch.float32).unsqueeze(-1)
    summed = (hidden.to(torch.float32) * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp_min(1.0)


def pool_and_normalize(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean followed by L2 normalisation, so cosine similarity is a dot product."""
    return F.normalize(masked_mean(hidden, attention_mask), dim=-1)
