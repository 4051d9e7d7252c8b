"""Fixtures: the tiny offline checkpoint, one shared embedder, and a few small media files."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest

from omni_rag.testing_media import make_audio, make_image, make_video

# Weights never download in tests: the tiny checkpoint is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    from omni_rag.testing import tiny_checkpoint

    return tiny_checkpoint("native")


@pytest.fixture(scope="session")
def embedder(checkpoint: Path) -> Any:
    from omni_rag import OmniEmbedder

    return OmniEmbedder.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="session")
def embeddings(embedder: Any) -> Any:
    from langchain_omni_rag import OmniEmbeddings

    return OmniEmbeddings(embedder=embedder, batch_size=2)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "image": make_image(root / "noise.png", seed=1),
        "image2": make_image(root / "other.png", seed=2),
        "audio": make_audio(root / "tone.wav", freq=330.0),
        "video": make_video(root / "clip.mp4", fps=4),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark langchain-tests' unmarked ``async def`` tests for pytest-asyncio, whatever its mode."""
    if name.startswith("test_") and inspect.iscoroutinefunction(obj) and not hasattr(obj, "pytestmark"):
        pytest.mark.asyncio(obj)
