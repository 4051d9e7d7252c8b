"""What the ``omni-rag serve`` tests share: an indexed copy of the example media and a live server.

The corpus is ``examples/media`` as ``make demo`` indexes it, plus a 12 s recording cut into 4 s
segments, so the page has segments whose ``start_s`` is not 0 to seek to.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "media"
QUERIES = REPO / "examples" / "queries"
OMNI_RAG = Path(sys.executable).with_name("omni-rag")
COLLECTION = "demo"
#: The recording cut into segments: 12 s in windows of 4 s -> segments at 0, 4 and 8 s.
LONG_VIDEO = "long_talk.mp4"
#: The key of the second test server (``--host 0.0.0.0``, key from ``$OMNI_RAG_API_KEY``).
API_KEY = "s3cret-key"
#: A file the traversal tests replace by a symlink out of its folder (no other test uses it).
SWAPPED = "swap_me.wav"


def build_corpus(root: Path, embedder: Any) -> Path:
    """Copy the example media (plus a segmented recording) to ``root/media``, index it into ``root/store``."""
    from omni_rag.cli import index_scan, open_store, scan_paths
    from omni_rag.retriever import OmniRetriever
    from omni_rag.segments import SegmentPolicy
    from omni_rag.testing.media import make_audio, make_video

    media = root / "media"
    shutil.copytree(EXAMPLES, media, ignore=shutil.ignore_patterns("README.md", "*.py"))
    make_video(media / LONG_VIDEO, seconds=12.0, fps=4, size=(160, 120), audio=True, seed=7)
    make_audio(media / SWAPPED, seconds=1.0, seed=8)  # the file a test swaps for a symlink
    store = open_store(COLLECTION, path=root / "store")
    try:
        report = index_scan(
            OmniRetriever(embedder, store),
            scan_paths([media]),
            quiet=True,
            policy=SegmentPolicy(window_s=4.0, min_segment_s=2.0),
        )
        assert not report.failures, report.failures
    finally:
        store.close()
    return root / "store"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running ``omni-rag serve`` subprocess and the URL it answers on."""

    process: subprocess.Popen[str]
    url: str

    def stop(self) -> str:
        """Stop it (SIGTERM, as Ctrl-C would) and return what it printed."""
        self.process.terminate()
        try:
            out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return out + err


def start_server(
    store: Path,
    checkpoint: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> Server:
    """``omni-rag serve`` on a free port; returns once ``/api/health`` answers 200."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in ("OMNI_RAG_MODEL", "OMNI_RAG_API_KEY")}
    full_env.update(env or {})
    command: Sequence[str] = [str(OMNI_RAG), "serve", "-c", COLLECTION, "--store", str(store)]
    command = [*command, "--model", str(checkpoint), "--host", host, "--port", str(port), *extra]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"omni-rag serve exited {process.returncode}\n{out}\n{err}")
        try:
            if httpx.get(f"{url}/api/health", headers=dict(headers or {}), timeout=2).status_code == 200:
                return Server(process, url)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError("omni-rag serve did not answer within 180 s")


def cli_search_json(store: Path, checkpoint: Path, *args: str) -> list[dict[str, Any]]:
    """``omni-rag search --json`` on a copy of ``store`` (without the holder's lock, socket and key)."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "store"
        shutil.copytree(store, copy, ignore=shutil.ignore_patterns("*.lock", ".lock", "*.sock", "*.key"))
        result = subprocess.run(
            [
                str(OMNI_RAG),
                "search",
                *args,
                "--json",
                "-c",
                COLLECTION,
                "--store",
                str(copy),
                "--model",
                str(checkpoint),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={k: v for k, v in os.environ.items() if k != "OMNI_RAG_MODEL"},
        )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))
