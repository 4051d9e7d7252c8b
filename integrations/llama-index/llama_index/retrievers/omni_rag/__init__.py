"""LlamaIndex retriever over an omni-rag store: any-modality queries, late fusion across streams."""

from llama_index.retrievers.omni_rag.base import OmniRetriever, hit_to_node

__all__ = ["OmniRetriever", "hit_to_node"]
