"""Adapter fixtures; the checkpoint, embedder and media come from omni_rag.testing.pytest_plugin."""

from __future__ import annotations

import inspect
from typing import Any

import pytest


@pytest.fixture(scope="session")
def embeddings(embedder: Any) -> Any:
    from langchain_omni_rag import OmniEmbeddings

    return OmniEmbeddings(embedder=embedder, batch_size=2)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark langchain-tests' unmarked ``async def`` tests for pytest-asyncio, whatever its mode."""
    if name.startswith("test_") and inspect.iscoroutinefunction(obj) and not hasattr(obj, "pytestmark"):
        pytest.mark.asyncio(obj)
