"""omni-rag: Omni-Embed-Nemotron-3B for RAG, with per-modality vectors fused at query time.

Heavy parts (torch, transformers) load on first use, so ``omni_rag.store`` and the
CLI's ``--help`` stay fast and torch-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from omni_rag.content import Content
from omni_rag.errors import ItemFailure, MediaError, OmniError, OmniInputError

if TYPE_CHECKING:
    from omni_rag.embedder import EmbedResult, OmniEmbedder
    from omni_rag.retriever import OmniRetriever
    from omni_rag.store import Hit, HitGroup, OmniStore
    from omni_rag.verify import verify

__version__ = "0.1.0"

_LAZY = {
    "OmniEmbedder": "omni_rag.embedder",
    "EmbedResult": "omni_rag.embedder",
    "OmniStore": "omni_rag.store",
    "Hit": "omni_rag.store",
    "HitGroup": "omni_rag.store",
    "OmniRetriever": "omni_rag.retriever",
    "verify": "omni_rag.verify",
}

__all__ = [
    "Content",
    "EmbedResult",
    "Hit",
    "HitGroup",
    "ItemFailure",
    "MediaError",
    "OmniEmbedder",
    "OmniError",
    "OmniInputError",
    "OmniRetriever",
    "OmniStore",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'omni_rag' has no attribute {name!r}")
