"""LlamaIndex vector store on omni-rag: one named vector per stream, exact late fusion at query time."""

from llama_index.vector_stores.omni_rag.base import OmniVectorStore
from llama_index.vector_stores.omni_rag.records import hit_to_node, to_qdrant_filter

__all__ = ["OmniVectorStore", "hit_to_node", "to_qdrant_filter"]
