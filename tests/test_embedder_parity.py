"""OmniEmbedder against the model card's recipe, run verbatim on tiny checkpoints in fp32.

The card's media reader cannot run here (torchvision has no ``read_video``; no ffmpeg
for audio in mp4), so on the card's side mp4 video goes through a PyAV-backed
``qwen_omni_utils`` reader and mp4 audio is handed over as the decoded array: both
sides then see identical arrays, and everything after decoding is the card's code.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor

from omni_rag import Content, OmniEmbedder, media
from omni_rag.card import card_conversation
from omni_rag.card import card_embed as card_recipe
from omni_rag.verify.card_media import card_video_reader

# The card's video path goes through omni_rag.verify.card_media's reader: it decodes every frame
# with PyAV and applies qwen's own sampling, independently of omni_rag.media (no seeking), so the
# parity test also checks the media layer's frame selection (and `omni-rag verify` runs the same).
pyav_reader_for_card = card_video_reader


@functools.cache
def card_model(checkpoint: Path, trust: bool) -> tuple[Any, Any]:
    model = AutoModel.from_pretrained(checkpoint, dtype=torch.float32, trust_remote_code=trust).eval()
    processor = AutoProcessor.from_pretrained(checkpoint, trust_remote_code=trust)
    return model, processor


def card_embed(checkpoint: Path, conversations: list[list[dict[str, Any]]], trust: bool) -> np.ndarray:
    """The model card's Usage section, verbatim apart from fp32 on the CPU."""
    model, processor = card_model(checkpoint, trust)
    with pyav_reader_for_card():
        return card_recipe(model, processor, conversations)


def frames_array(seed: int = 7, t: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(t, 56, 84, 3), dtype=np.uint8)


def cases(media_dir: Path) -> list[tuple[str, str, Content, list[dict[str, Any]]]]:
    """(name, kind, our item, the card's conversation for the same input)."""
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(24000)).astype(np.float32)
    picture = Image.open(media_dir / "picture.png").convert("RGB")
    mp4 = str(media_dir / "clip.mp4")
    mp4_audio = media.load_audio(mp4)
    frames = frames_array()
    pil_frames = [Image.fromarray(f) for f in frames]
    q, p = "query: ", "passage: "
    return [
        (
            "text query",
            "query",
            Content(text="how do volcanoes erupt?"),
            card_conversation(q, text="how do volcanoes erupt?"),
        ),
        (
            "text document",
            "document",
            Content(text="Lava flows downhill."),
            card_conversation(p, text="Lava flows downhill."),
        ),
        (
            "text+image PIL",
            "document",
            Content(text="a picture", image=picture),
            card_conversation(p, text="a picture", image=picture),
        ),
        (
            "text+image path",
            "document",
            Content(text="a picture", image=str(media_dir / "picture.png")),
            card_conversation(p, text="a picture", image=str(media_dir / "picture.png")),
        ),
        ("audio array", "query", Content(audio=wave), card_conversation(q, audio=wave)),
        (
            "audio wav path",
            "document",
            Content(audio=str(media_dir / "tone.wav")),
            card_conversation(p, audio=str(media_dir / "tone.wav")),
        ),
        ("audio mp4 track", "document", Content(audio=mp4), card_conversation(p, audio=mp4_audio)),
        ("video mp4 path", "document", Content(video=mp4), card_conversation(p, video=mp4)),
        ("video frame array", "query", Content(video=frames), card_conversation(q, video=pil_frames)),
        (
            "text+video+audio",
            "document",
            Content(text="a clip", video=mp4, audio=mp4),
            card_conversation(p, text="a clip", video=mp4, audio=mp4_audio),
        ),
    ]


def embed_ours(embedder: OmniEmbedder, kind: str, items: list[Content]) -> np.ndarray:
    if kind == "query":
        return embedder.embed_queries(items)
    return embedder.embed_documents(items)


def assert_parity(ours: np.ndarray, card: np.ndarray, names: list[str]) -> None:
    assert ours.shape == card.shape
    cos = np.sum(ours * card, axis=1)
    worst = {name: float(1 - c) for name, c in zip(names, cos, strict=True)}
    assert max(worst.values()) <= 1e-5, worst


@pytest.fixture(scope="module")
def packed_embedder(native_checkpoint: Path) -> OmniEmbedder:
    """The packed path (one row per batch, SDPA block mask on the CPU) with background workers."""
    embedder = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", packing=True, num_workers=2)
    assert embedder.backend.packed  # type: ignore[attr-defined]
    return embedder


FIXTURES = {"native": "embedder", "custom": "custom_embedder", "packed": "packed_embedder"}


@pytest.mark.parametrize("variant", ["native", "custom", "packed"])
def test_each_input_matches_the_card(variant: str, request: pytest.FixtureRequest, media_dir: Path) -> None:
    embedder: OmniEmbedder = request.getfixturevalue(FIXTURES[variant])
    checkpoint: Path = request.getfixturevalue(
        "custom_checkpoint" if variant == "custom" else "native_checkpoint"
    )
    for name, kind, item, conv in cases(media_dir):
        ours = embed_ours(embedder, kind, [item])
        card = card_embed(checkpoint, [conv], trust=variant == "custom")
        assert_parity(ours, card, [name])


@pytest.mark.parametrize("variant", ["native", "packed"])
def test_mixed_batch_matches_the_card(
    variant: str, request: pytest.FixtureRequest, native_checkpoint: Path, media_dir: Path
) -> None:
    embedder: OmniEmbedder = request.getfixturevalue(FIXTURES[variant])
    docs = [c for c in cases(media_dir) if c[1] == "document"]
    ours = embedder.embed_documents([item for _, _, item, _ in docs], batch_size=3)
    card = card_embed(native_checkpoint, [conv for _, _, _, conv in docs], trust=False)
    assert_parity(ours, card, [name for name, *_ in docs])


def test_vectors_are_normalised_float32(embedder: OmniEmbedder, media_dir: Path) -> None:
    vectors = embedder.embed_documents(["one", Content(audio=str(media_dir / "tone.wav"))])
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
