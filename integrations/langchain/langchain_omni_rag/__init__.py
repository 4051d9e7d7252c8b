"""LangChain integration of omni-rag (Omni-Embed-Nemotron-3B): embeddings, retriever, vector store."""

from langchain_omni_rag.embeddings import OmniEmbeddings
from langchain_omni_rag.retrievers import OmniRetriever, hit_to_document
from langchain_omni_rag.vectorstores import OmniVectorStore

__all__ = ["OmniEmbeddings", "OmniRetriever", "OmniVectorStore", "hit_to_document"]
