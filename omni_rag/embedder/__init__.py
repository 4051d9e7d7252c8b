"""Model-side code, one job per module: loading, processing, batching, pooling, the API."""

from omni_rag.checkpoints import DEFAULT_MODEL, OFFICIAL_REVISIONS
from omni_rag.embedder.base import EmbeddingBackend, EmbedResult, PreparedItem, split_streams
from omni_rag.embedder.embedder import OmniEmbedder
from omni_rag.embedder.loading import ModelLoadError
from omni_rag.embedder.shared import load_or_share_embedder
from omni_rag.modalities import STREAMS

__all__ = [
    "DEFAULT_MODEL",
    "OFFICIAL_REVISIONS",
    "STREAMS",
    "EmbedResult",
    "EmbeddingBackend",
    "ModelLoadError",
    "OmniEmbedder",
    "PreparedItem",
    "load_or_share_embedder",
    "split_streams",
]
