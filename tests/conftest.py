"""Shared fixtures: tiny checkpoints with the real architecture, built offline once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the tests may reach the hub: weights never download here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def native_checkpoint() -> Path:
    from omni_rag.testing import tiny_checkpoint

    return tiny_checkpoint("native")


@pytest.fixture(scope="session")
def custom_checkpoint() -> Path:
    from omni_rag.testing import tiny_checkpoint

    return tiny_checkpoint("custom")


@pytest.fixture(scope="session")
def embedder(native_checkpoint: Path):  # type: ignore[no-untyped-def]
    from omni_rag import OmniEmbedder

    return OmniEmbedder.from_pretrained(native_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def custom_embedder(custom_checkpoint: Path):  # type: ignore[no-untyped-def]
    from omni_rag import OmniEmbedder

    return OmniEmbedder.from_pretrained(custom_checkpoint, device="cpu", trust_remote_code=True)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few small media files shared by the embedder tests."""
    from omni_rag.testing_media import make_audio, make_image, make_video

    root = tmp_path_factory.mktemp("media")
    make_audio(root / "tone.wav", seconds=2.0, sample_rate=16000, freq=330.0, seed=1)
    make_audio(root / "tone44k.flac", seconds=1.5, sample_rate=44100, channels=2, freq=550.0, seed=2)
    make_video(root / "clip.mp4", seconds=2.0, fps=10, size=(64, 48), audio=True, seed=3)
    make_video(root / "silent.mp4", seconds=2.0, fps=10, size=(64, 48), audio=False, seed=4)
    make_image(root / "picture.png", size=(80, 60), seed=5)
    return root
