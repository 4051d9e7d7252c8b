"""Load an embedder once and share it: the one rule both framework adapters follow.

A 3B model in memory twice (one copy for LlamaIndex's ``Settings.embed_model``, one for a
retriever) is the common way to run out of GPU memory, so every adapter takes an already loaded
embedder and loads one only when none is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omni_rag.deprecation import renamed
from omni_rag.embedder.embedder import OmniEmbedder


def load_or_share_embedder(
    embedder: OmniEmbedder | None,
    model_name: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool | None = None,
    batch_size: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> OmniEmbedder:
    """``embedder`` itself when given, else :meth:`OmniEmbedder.from_pretrained` with these options."""
    if embedder is not None:
        return embedder
    options = dict(model_kwargs or {})
    if batch_size is not None:
        options["batch_size"] = batch_size
    return OmniEmbedder.from_pretrained(
        model_name,
        device=device,
        dtype=dtype,
        revision=revision,
        trust_remote_code=trust_remote_code,
        **options,
    )


def renamed_option(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *, owner: str
) -> dict[str, Any]:
    """The adapters' ``from_pretrained`` options under either name (``embedder_kwargs`` is deprecated)."""
    return dict(renamed(old, new, old="embedder_kwargs", new="model_kwargs", owner=owner) or {})
