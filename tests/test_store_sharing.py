"""Search an embedded store while another process writes it (issue 26), kill -9 of the writer included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from omni_rag.store import OmniStore, StoreLockedError

DIM = 64

_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from omni_rag.store import OmniStore

    path, dim = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    store = OmniStore("live", path=path, index_threshold=300)
    for batch in range(10_000):
        v = rng.normal(size=(2 * 50, dim)).astype(np.float32)
        ids = [str(batch * 50 + i) for i in range(50)]
        store.upsert(ids, [{"audio": v[i], "video": v[50 + i]} for i in range(50)])
        print("acked", batch * 50 + 50, flush=True)
        time.sleep(0.05)
    """
)


def _vectors(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The writer's vectors, regenerated: audio and video of points 0..n-1."""
    rng = np.random.default_rng(0)
    audio, video = [], []
    for _ in range(n // 50):
        v = rng.normal(size=(100, DIM)).astype(np.float32)
        audio += list(v[:50])
        video += list(v[50:])
    return audio, video


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _acked(proc: subprocess.Popen[str], at_least: int) -> int:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        assert line, "the writer ended"
        count = int(line.split()[1])
        if count >= at_least:
            return count


def test_search_while_another_process_writes_then_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "db"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(DIM)], stdout=subprocess.PIPE, text=True
    )
    try:
        acked = _acked(writer, 400)  # past the writer's index_threshold: builds run meanwhile
        reader = OmniStore("live", path=str(path))
        assert reader.count() >= acked  # everything acknowledged before the reader looked
        audio, video = _vectors(acked)
        for i in (0, acked // 2, acked - 1):
            assert reader.search(audio[i], streams=["audio"], limit=1)[0].id == str(i)
        (point,) = reader.get([str(acked - 1)])
        assert point is not None and np.allclose(point.vectors["video"], _unit(video[acked - 1]), atol=1e-6)
        assert not reader.writable
        with pytest.raises(StoreLockedError, match="search"):
            reader.upsert(["mine"], [{"audio": audio[0]}])
        later = _acked(writer, reader.count() + 100)
        assert reader.count() >= later  # the reader sees what was written after it opened
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        # the writer is gone: the reader takes the store over, nothing acknowledged is lost
        total = reader.count()
        assert total >= later and total % 50 == 0
        audio, _ = _vectors(total)
        assert reader.search(audio[total - 1], streams=["audio"], limit=1)[0].id == str(total - 1)
        assert reader.writable
        reader.upsert(["mine"], [{"audio": audio[0]}])  # it holds the store now: writes work
        assert reader.count() == total + 1
        reader.close()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_a_holder_that_serves_nothing_still_refuses(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with OmniStore("live", path=str(path), dim=DIM) as holder:
        (path / "edge" / "live.sock").unlink()  # as an older omni-rag that serves no reads
        with pytest.raises(StoreLockedError, match="in use by another process"):
            OmniStore("live", path=str(path))
        assert holder.count() == 0


def test_a_store_path_too_long_for_a_socket_is_still_served(tmp_path: Path) -> None:
    path = tmp_path / ("deep" * 30) / "db"  # past the 108 bytes a Unix socket path may have
    with OmniStore("live", path=str(path), dim=DIM) as holder:
        holder.upsert(["a"], [{"audio": np.ones(DIM, dtype=np.float32)}])
        code = f"from omni_rag.store import OmniStore; print(OmniStore('live', path={str(path)!r}).count())"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "1"


def test_a_second_index_run_is_refused_at_once_while_searches_work(tmp_path: Path) -> None:
    path = tmp_path / "db"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("hello")
    with OmniStore("live", path=str(path), dim=DIM):
        cli = [sys.executable, "-m", "omni_rag.cli"]
        index = [*cli, "index", str(tmp_path / "docs"), "-c", "live", "--store", str(path)]
        out = subprocess.run([*index, "--model", str(tmp_path / "no-model")], capture_output=True, text=True)
        assert out.returncode == 5, out.stderr
        assert "in use by another process that is writing" in out.stderr and "searches work" in out.stderr
        info = subprocess.run(
            [*cli, "info", "-c", "live", "--store", str(path)], capture_output=True, text=True
        )
        assert info.returncode == 0, info.stderr


def test_a_reader_follows_the_next_holder_when_the_first_one_closes(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first = OmniStore("live", path=str(path), dim=DIM)
    first.upsert(["a"], [{"audio": np.ones(DIM, dtype=np.float32)}])
    reader = OmniStore("live", path=str(path))  # served by the first holder (same process here)
    assert reader.count() == 1
    first.close()
    second = OmniStore("live", path=str(path))  # the store is free: this one holds it now
    assert second.writable
    second.upsert(["b"], [{"audio": -np.ones(DIM, dtype=np.float32)}])
    assert reader.count() == 2 and not reader.writable  # reads through the new holder
    second.close()
    reader.close()
