"""``examples/langchain_chain.py`` runs end to end on the tiny checkpoint (model from ``OMNI_RAG_MODEL``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_example_runs_end_to_end(checkpoint: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "langchain_chain.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMNI_RAG_MODEL": str(checkpoint)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[:3] == ["[an LLM would answer this prompt]", "Answer from the context.", "Context:"]
    context = lines[3 : lines.index("Question: How long do I bake a loaf of bread?")]
    assert len(context) == 2 and all(line.startswith("- [") for line in context)
    assert lines[-1] in {"qdrant: Bees carry pollen.", "qdrant: Tides rise."}
