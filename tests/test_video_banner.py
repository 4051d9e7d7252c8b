"""Decoding a video prints nothing of qwen's on stderr, and real errors still reach it (issue 26)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from qwen_omni_utils.v2_5 import vision_process

from omni_rag.media import video


def test_video_decode_prints_no_backend_banner(media_dir: Path) -> None:
    code = textwrap.dedent(
        f"""
        from omni_rag.media import load_video
        for _ in range(2):
            frames = load_video({str(media_dir / "clip.mp4")!r}).frames
        print(tuple(frames.shape))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().startswith("(")
    assert "qwen-vl-utils" not in done.stderr


def test_other_output_of_the_backend_choice_still_reaches_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def choose() -> str:
        print("qwen-vl-utils using torchvision to read video.", file=sys.stderr)
        print("torchvision: libavcodec not found", file=sys.stderr)
        return "torchvision"

    monkeypatch.setattr(vision_process, "get_video_reader_backend", choose)
    video._choose_backend_quietly()
    err = capsys.readouterr().err
    assert err == "torchvision: libavcodec not found\n"
