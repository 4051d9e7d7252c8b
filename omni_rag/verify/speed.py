"""Step 5: items per second per modality on the user's device (informative; never fails)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from omni_rag.content import Content
from omni_rag.embedder import OmniEmbedder
from omni_rag.errors import OmniInputError
from omni_rag.verify.report import StepResult


def speed_items(media: Path) -> dict[str, Content]:
    """One representative item per modality from ``examples/media``."""
    return {
        "text": Content(text=(media / "notes.md").read_text(encoding="utf-8")),
        "image": Content(image=str(media / "mountain_sunset.jpg")),
        "audio": Content(audio=str(media / "volcano.wav")),
        "video": Content(video=str(media / "ocean_tides.mp4")),
    }


def _synchronize(embedder: OmniEmbedder) -> None:
    device = getattr(embedder.backend, "device", None)
    if isinstance(device, torch.device) and device.type == "cuda":
        torch.cuda.synchronize(device)


def items_per_second(embedder: OmniEmbedder, item: Content, repeats: int) -> float:
    """Embed ``repeats`` copies in batches after one warm-up item; decoding included, as in indexing."""
    embedder.embed_documents([item])
    _synchronize(embedder)
    started = time.perf_counter()
    embedder.embed_documents([item] * repeats)
    _synchronize(embedder)
    return repeats / (time.perf_counter() - started)


def speed_step(embedder: OmniEmbedder, media: Path, repeats: int = 8) -> StepResult:
    """Documents per second for each modality, whole pipeline (decode, process, forward, pool)."""
    step = StepResult("speed")
    for modality, item in speed_items(media).items():
        try:
            rate = items_per_second(embedder, item, repeats)
        except OmniInputError as error:  # a backend without this modality says so
            step.add(modality, "skipped", str(error))
            continue
        step.add(
            modality,
            "pass",
            f"{rate:.1f} items/s ({repeats} items, batch {embedder.batch_size})",
            items_per_s=rate,
        )
    return step
