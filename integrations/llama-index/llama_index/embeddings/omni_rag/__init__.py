"""LlamaIndex embeddings backed by omni-rag (Omni-Embed-Nemotron-3B)."""

from llama_index.embeddings.omni_rag.base import OmniEmbedding

__all__ = ["OmniEmbedding"]
