"""langchain-tests' ``VectorStoreIntegrationTests``, unmodified, on both engines of ``OmniVectorStore``.

Each test gets an empty store: a fresh in-memory Qdrant Edge store, or a fresh collection on
qdrant-client's in-memory mode (the stand-in for a server). Nothing is overridden but the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_omni_rag import OmniVectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from qdrant_client import QdrantClient


class TestOmniVectorStoreEdge(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[OmniVectorStore]:  # type: ignore[override]
        store = OmniVectorStore(embedding=self.get_embeddings(), collection_name="standard")
        try:
            yield store
        finally:
            store.store.close()


class TestOmniVectorStoreQdrantClient(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[OmniVectorStore]:  # type: ignore[override]
        client = QdrantClient(":memory:")
        store = OmniVectorStore(embedding=self.get_embeddings(), collection_name="standard", client=client)
        try:
            yield store
        finally:
            client.close()
