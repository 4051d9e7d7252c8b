"""Media for the card's side of the fidelity check, decoded without omni-rag's media layer.

The card hands paths to ``qwen_omni_utils``, whose readers fail on today's stack (torchvision
>= 0.24 has no ``read_video``; audio inside mp4 needs an ``ffmpeg`` binary). So, for the card
only, mp4 video goes through a plain PyAV reader registered as a ``qwen_omni_utils`` backend
(decode every frame, then qwen's own sampling), and an mp4's audio track is decoded here.
Wav, flac and mp3 paths go to the card unchanged (``librosa.load``). Written independently of
:mod:`omni_rag.media`, so the check also covers omni-rag's seeking and frame selection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import av
import librosa
import numpy as np
import torch
from qwen_omni_utils.v2_5 import vision_process

SAMPLE_RATE = 16000
_BACKEND = "omni-rag-verify-pyav"


def read_video_pyav(ele: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any], float]:
    """What qwen's torchvision reader does, with PyAV: decode every frame, then its sampling."""
    with av.open(ele["video"]) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        video_fps = float(stream.average_rate or 0) or 1.0
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    total = video.shape[0]
    nframes = vision_process.smart_nframes(ele, total_frames=total, video_fps=video_fps)
    idx = torch.linspace(0, total - 1, nframes).round().long()
    sample_fps = nframes / max(total, 1e-6) * video_fps
    return video[idx], {"fps": video_fps, "frames_indices": idx, "total_num_frames": total}, sample_fps


@contextmanager
def card_video_reader() -> Iterator[None]:
    """Route the card's ``fetch_video`` to :func:`read_video_pyav` for the duration."""
    backends = vision_process.VIDEO_READER_BACKENDS
    original = vision_process.get_video_reader_backend
    backends[_BACKEND] = read_video_pyav
    vision_process.get_video_reader_backend = lambda: _BACKEND
    try:
        yield
    finally:
        vision_process.get_video_reader_backend = original
        backends.pop(_BACKEND, None)


def decode_audio_track(path: str) -> np.ndarray:
    """A container's first audio track as mono float32 at 16 kHz, as ``librosa.load`` returns it."""
    chunks: list[np.ndarray] = []
    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = int(stream.rate)
        for frame in container.decode(stream):
            raw = frame.to_ndarray()
            samples = raw.astype(np.float32)
            if np.issubdtype(raw.dtype, np.integer):  # libsndfile's scaling: int / 2**(bits-1)
                samples /= float(2 ** (8 * raw.itemsize - 1))
            if not frame.format.is_planar:
                samples = samples.reshape(-1, len(frame.layout.channels)).T
            chunks.append(samples)
    wave = np.concatenate(chunks, axis=1).mean(axis=0)
    if rate != SAMPLE_RATE:
        wave = librosa.resample(wave, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(wave, dtype=np.float32)
