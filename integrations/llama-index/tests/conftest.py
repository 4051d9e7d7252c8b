"""Fixtures: the tiny offline checkpoint, one shared embedder, and a few small media files."""

from __future__ import annotations

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
def embed_model(embedder: Any) -> Any:
    from llama_index.embeddings.omni_rag import OmniEmbedding

    return OmniEmbedding(embedder=embedder, embed_batch_size=2)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "image": make_image(root / "noise.png", seed=1),
        "image2": make_image(root / "other.png", seed=2),
        "audio": make_audio(root / "tone.wav", freq=330.0),
        "video": make_video(root / "clip.mp4", fps=4),
    }
