"""Adapter fixtures; the checkpoint, embedder and media come from omni_rag.testing.pytest_plugin."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def embed_model(embedder: Any) -> Any:
    from llama_index.embeddings.omni_rag import OmniEmbedding

    return OmniEmbedding(embedder=embedder, embed_batch_size=2)
