"""Core tests: fixtures come from :mod:`omni_rag.testing.pytest_plugin` (see the root conftest.py)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def serve_corpus(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """The example media indexed as ``make demo`` does, plus a segmented recording."""
    from tests.serve_support import build_corpus

    root = tmp_path_factory.mktemp("serve")
    build_corpus(root, embedder)
    return root


@pytest.fixture(scope="session")
def server(serve_corpus: Path, native_checkpoint: Path) -> Iterator[Any]:
    """One ``omni-rag serve`` subprocess on that store, shared by the API and browser tests."""
    from tests.serve_support import start_server

    running = start_server(serve_corpus / "store", native_checkpoint)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def keyed_server(
    serve_corpus: Path, native_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A second server: ``--host 0.0.0.0``, key from ``$OMNI_RAG_API_KEY``, 0.05 MB upload limit."""
    import shutil

    from tests.serve_support import API_KEY, start_server

    store = tmp_path_factory.mktemp("keyed") / "store"
    shutil.copytree(
        serve_corpus / "store", store, ignore=shutil.ignore_patterns("*.lock", ".lock", "*.sock", "*.key")
    )
    running = start_server(
        store,
        native_checkpoint,
        "--max-upload-mb",
        "0.05",
        host="0.0.0.0",
        env={"OMNI_RAG_API_KEY": API_KEY},
        headers={"api-key": API_KEY},
    )
    yield running
    running.stop()
