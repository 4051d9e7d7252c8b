"""``omni-rag serve`` keeps the model in a process of its own: what happens when either process
dies, and start-up errors that happen in the model process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from omni_rag.cli import open_store
from tests.serve_support import COLLECTION, OMNI_RAG, Server, free_port, start_server


def model_process(server: Server) -> int:
    """The pid of the server's model process (its spawned child, not multiprocessing's tracker)."""
    parent = str(server.process.pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if stat.rsplit(")", 1)[1].split()[1] == parent and b"spawn_main" in command:
            return int(entry.name)
    raise AssertionError("no model process found")


def gone(pid: int, within_s: float = 60.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return True  # exited, waiting for a parent that is itself gone
        time.sleep(0.1)
    return False


@pytest.fixture
def store_copy(serve_corpus: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(
        serve_corpus / "store", copy, ignore=shutil.ignore_patterns("*.lock", ".lock", "*.sock", "*.key")
    )
    return copy


def test_kill_9_of_the_http_process_stops_the_model_process_and_frees_the_store(
    store_copy: Path, native_checkpoint: Path
) -> None:
    server = start_server(store_copy, native_checkpoint)
    try:
        points = httpx.get(f"{server.url}/api/health").json()["points"]
        child = model_process(server)
    except BaseException:
        server.stop()
        raise
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(30)
    if not gone(child):
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the model process outlived the server killed with SIGKILL")
    store = open_store(COLLECTION, path=store_copy, must_exist=True)
    try:
        assert store.count() == points
        store.delete(["not-a-point"])  # a write: nobody holds the store any more
    finally:
        store.close()


def test_a_dead_model_process_is_503_not_a_hang(store_copy: Path, native_checkpoint: Path) -> None:
    server = start_server(store_copy, native_checkpoint)
    try:
        assert httpx.post(f"{server.url}/api/search", json={"text": "bread"}).status_code == 200
        os.kill(model_process(server), signal.SIGKILL)
        searched = httpx.post(f"{server.url}/api/search", json={"text": "bread"}, timeout=60)
        assert searched.status_code == 503 and "model process stopped" in searched.json()["detail"]
        health = httpx.get(f"{server.url}/api/health", timeout=60)
        assert health.status_code == 503 and health.json()["status"] == "down"
        assert server.process.poll() is None
    finally:
        server.stop()


def test_sigterm_closes_the_model_process_before_the_server_exits(
    store_copy: Path, native_checkpoint: Path
) -> None:
    server = start_server(store_copy, native_checkpoint)
    try:
        child = model_process(server)
    finally:
        printed = server.stop()
    assert gone(child, within_s=0.5), "the model process was still running when the server had exited"
    assert "Traceback" not in printed, printed


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["-c", "no-such-collection"], 3, "no collection 'no-such-collection'"),
        (["-c", COLLECTION, "--model", "/no/such/model"], 6, "/no/such/model"),
    ],
)
def test_start_up_errors_in_the_model_process_keep_their_exit_code(
    store_copy: Path, native_checkpoint: Path, args: list[str], code: int, words: str
) -> None:
    command = [str(OMNI_RAG), "serve", "--store", str(store_copy), "--port", str(free_port())]
    if "--model" not in args:
        command += ["--model", str(native_checkpoint)]
    env = {k: v for k, v in os.environ.items() if k != "OMNI_RAG_MODEL"}
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == code and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
