"""Fixtures every omni-rag test suite uses: tiny checkpoints, embedders on them, small media files.

Loaded by the repository's root ``conftest.py`` (``pytest_plugins``), so the core tests and both
integration packages share one definition. Checkpoints are built offline once per cache folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def native_checkpoint() -> Path:
    """The plain thinker layout (what transformers 5 loads natively)."""
    from omni_rag.testing import tiny_checkpoint

    return tiny_checkpoint("native")


@pytest.fixture(scope="session")
def checkpoint(native_checkpoint: Path) -> Path:
    """The default tiny checkpoint (the native one)."""
    return native_checkpoint


@pytest.fixture(scope="session")
def custom_checkpoint() -> Path:
    """The remote-code layout with a bidirectional model, as the official repository ships."""
    from omni_rag.testing import tiny_checkpoint

    return tiny_checkpoint("custom")


@pytest.fixture(scope="session")
def embedder(native_checkpoint: Path) -> Any:
    """One CPU embedder on the native checkpoint, shared by a whole session."""
    from omni_rag import OmniEmbedder

    return OmniEmbedder.from_pretrained(native_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def custom_embedder(custom_checkpoint: Path) -> Any:
    """A CPU embedder on the remote-code checkpoint."""
    from omni_rag import OmniEmbedder

    return OmniEmbedder.from_pretrained(custom_checkpoint, device="cpu", trust_remote_code=True)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few small media files: wav, stereo 44.1 kHz flac, mp4 with and without sound, png."""
    from omni_rag.testing.media import make_audio, make_image, make_video

    root = tmp_path_factory.mktemp("media")
    make_audio(root / "tone.wav", seconds=2.0, sample_rate=16000, freq=330.0, seed=1)
    make_audio(root / "tone44k.flac", seconds=1.5, sample_rate=44100, channels=2, freq=550.0, seed=2)
    make_video(root / "clip.mp4", seconds=2.0, fps=10, size=(64, 48), audio=True, seed=3)
    make_video(root / "silent.mp4", seconds=2.0, fps=10, size=(64, 48), audio=False, seed=4)
    make_image(root / "picture.png", size=(80, 60), seed=5)
    return root


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Named media for the adapter suites: two images, a tone, a clip."""
    from omni_rag.testing.media import make_audio, make_image, make_video

    root = tmp_path_factory.mktemp("adapter-media")
    return {
        "image": make_image(root / "noise.png", seed=1),
        "image2": make_image(root / "other.png", seed=2),
        "audio": make_audio(root / "tone.wav", freq=330.0),
        "video": make_video(root / "clip.mp4", fps=4),
    }


@pytest.fixture(scope="session")
def cli_recording(native_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An 80 s video with sound, and the points ``omni-rag index`` writes for it (two segments).

    What the framework stores must reproduce when they index the same file.
    """
    from omni_rag.cli import main
    from omni_rag.store import OmniStore
    from omni_rag.testing.media import make_video

    root = tmp_path_factory.mktemp("cli-recording")
    video = make_video(root / "talk.mp4", seconds=80.0, fps=2, size=(32, 24), audio=True, seed=11)
    args = ["index", str(video), "-c", "cli", "--store", str(root / "store"), "-q"]
    assert main([*args, "--model", str(native_checkpoint), "--device", "cpu"]) == 0
    with OmniStore("cli", path=str(root / "store")) as store:
        points = {p.id: p for p in store.scroll()}
    return {"path": video, "points": points}


def assert_same_points(got: Any, want: Any) -> None:
    """Same ids, streams and vectors (within 1e-6) as ``want`` (both ``{id: StoredPoint}``)."""
    import numpy as np

    assert sorted(got) == sorted(want)
    for point_id, expected in want.items():
        assert sorted(got[point_id].vectors) == sorted(expected.vectors), point_id
        for stream, vector in expected.vectors.items():
            np.testing.assert_allclose(got[point_id].vectors[stream], vector, atol=1e-6, err_msg=point_id)
