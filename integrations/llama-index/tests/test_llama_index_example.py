"""``examples/llama_index_multimodal.py`` runs end to end on the tiny checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_example_runs_end_to_end(checkpoint: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "llama_index_multimodal.py"), "--model", str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMNI_RAG_MODEL": "not/used-when-model-is-given"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    titles = [line for line in lines if not line.startswith("  ")]
    assert titles == [
        "text query: how long do I bake a loaf of bread?",
        "image query: mountain_sunset.jpg",
        "text index: why do crops need bees?",
    ]
    hits = [line for line in lines if line.startswith("  hit score=")]
    assert len(hits) == 3 + 3 + 2
    media = {p.name for p in (REPO / "examples" / "media").iterdir()} | {"-"}
    assert all(line.split("source='")[1].split("'")[0] in media for line in hits[:6])
    # the picture itself is the best match for an image query on it
    first_image_hit = lines[lines.index("image query: mountain_sunset.jpg") + 1]
    assert "modality=image source='mountain_sunset.jpg'" in first_image_hit
