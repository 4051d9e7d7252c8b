"""LangChain integration of omni-rag (Omni-Embed-Nemotron-3B): embeddings and a late-fusion retriever."""

from langchain_omni_rag.embeddings import OmniEmbeddings
from langchain_omni_rag.retrievers import OmniRetriever, hit_to_document

__all__ = ["OmniEmbeddings", "OmniRetriever", "hit_to_document"]
