"""LangChain's standard test suites, unmodified, against the tiny checkpoint."""

from __future__ import annotations

from functools import cache
from typing import Any

from langchain_omni_rag import OmniEmbeddings, OmniRetriever
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from omni_rag.retriever import OmniRetriever as CoreRetriever


@cache
def tiny_params() -> dict[str, Any]:
    from omni_rag.testing import tiny_checkpoint

    return {"model_name": str(tiny_checkpoint("native")), "device": "cpu"}


@cache
def indexed_core() -> CoreRetriever:
    """A core retriever over a few texts, built once for the whole module."""
    from omni_rag.store import OmniStore

    core = CoreRetriever(OmniEmbeddings(**tiny_params())._model, OmniStore("standard", location=":memory:"))
    core.add(["the volcano erupted at dawn", "bake the loaf", "bees carry pollen", "tides follow the moon"])
    return core


class TestOmniEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[OmniEmbeddings]:
        return OmniEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return tiny_params()


class TestOmniEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[OmniEmbeddings]:
        return OmniEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return tiny_params()


class TestOmniRetrieverIntegration(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[OmniRetriever]:
        return OmniRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"retriever": indexed_core()}

    @property
    def retriever_query_example(self) -> str:
        return "when did the volcano erupt?"
