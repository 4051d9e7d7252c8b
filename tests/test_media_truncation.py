"""A truncated WAV fails like a truncated MP4 does, instead of being indexed as a shorter file."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_rag.errors import MediaError
from omni_rag.media import load_audio
from omni_rag.testing.media import make_audio


def test_truncated_wav_is_an_error_not_a_shorter_file(tmp_path: Path) -> None:
    full = make_audio(tmp_path / "full.wav", seconds=6.0)
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 3])
    assert load_audio(full).shape[0] == 6 * 16000
    with pytest.raises(MediaError, match=r"truncated audio: the file declares 6.00 s but only 2.00 s"):
        load_audio(cut)
    with pytest.raises(MediaError, match="truncated audio"):
        load_audio(cut, start_s=1.0, end_s=5.0)  # a window reaching past what is there
    assert load_audio(cut, start_s=0.5, end_s=1.5).shape[0] == 16000  # what is there still reads
