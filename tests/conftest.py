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
