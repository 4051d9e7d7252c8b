"""Fixtures: the tiny offline checkpoint, one shared embedder, and a few small media files."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

# Weights never download in tests: the tiny checkpoint is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def write_image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)).save(path)
    return path


def write_audio(path: Path, freq: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
    return path


def write_video(path: Path, seconds: float = 2.0, fps: int = 4) -> Path:
    """A small H.264 video with an AAC audio track, frames changing every step."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for i in range(int(seconds * fps)):
            pixels = np.full((48, 64, 3), (i * 40) % 256, dtype=np.uint8)
            pixels[:, (i * 8) % 64 :, 1] = 255
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode())
        t = np.arange(int(16000 * seconds)) / 16000
        wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


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
        "image": write_image(root / "noise.png", seed=1),
        "image2": write_image(root / "other.png", seed=2),
        "audio": write_audio(root / "tone.wav", freq=330.0),
        "video": write_video(root / "clip.mp4"),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark langchain-tests' unmarked ``async def`` tests for pytest-asyncio, whatever its mode."""
    if name.startswith("test_") and inspect.iscoroutinefunction(obj) and not hasattr(obj, "pytestmark"):
        pytest.mark.asyncio(obj)
