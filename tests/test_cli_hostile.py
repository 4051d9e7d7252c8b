"""``omni-rag index`` on a hostile folder: odd names, loops, FIFOs, links out, huge files, exclusions.

One real ``omni-rag index`` subprocess runs over a folder built with every trap at once (a FIFO
would hang a run that opens it, so a timeout guards it); each test checks one trap's fate in its
report and in the store.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from omni_rag.store import OmniStore
from omni_rag.testing.media import make_audio
from tests.test_cli import OMNI_RAG, explain, start

SECRET = "TOP SECRET: the launch codes are 0000"


def _index(*args: str | os.PathLike[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMNI_RAG_MODEL"}
    return subprocess.run(
        [str(OMNI_RAG), "index", *map(str, args), "-q"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _build(root: Path) -> Path:
    h = root / "h"
    (h / "sub").mkdir(parents=True)
    (h / "node_modules" / "pkg").mkdir(parents=True)
    (h / "good.txt").write_text("a good plain note about bees")
    with open(os.path.join(os.fsencode(h), b"bad\xffname.txt"), "wb") as handle:
        handle.write(b"a note whose name is not UTF-8")
    (h / "selfloop.txt").symlink_to("selfloop.txt")
    (h / "a_loop").symlink_to("b_loop")
    (h / "b_loop").symlink_to("a_loop")
    os.mkfifo(h / "pipe.txt")
    (root / "secret.txt").write_text(SECRET)
    (h / "host.txt").symlink_to(root / "secret.txt")
    (root / "outside").mkdir()
    (root / "outside" / "o.txt").write_text(SECRET + " (folder)")
    (h / "outlink").symlink_to(root / "outside", target_is_directory=True)
    (h / "sub" / "deep.txt").write_text("a note deep in a sub folder")
    (h / "sub" / "skipme.txt").write_text("excluded by relative path")
    (h / "sub" / "other.txt").write_text("excluded by path as given")
    (h / "inlink.txt").symlink_to(h / "sub" / "deep.txt")  # a link inside the folder: fine, once
    (h / "node_modules" / "pkg" / "x.txt").write_text("excluded by folder name")
    (h / "big.txt").write_text("word " * 300_000)  # 1.5 MB of real text, over --max-text-mb 1
    with open(h / "huge.txt", "wb") as handle:  # 3 GB, sparse: reading it all would show in RSS
        handle.truncate(3 * 2**30)
    return h


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, native_checkpoint: Path) -> dict[str, object]:
    root = tmp_path_factory.mktemp("hostile")
    h = _build(root)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = _index(
        h,
        "-c", "h",
        "--store", root / "st",
        "--model", native_checkpoint,
        "--exclude", "node_modules",
        "--exclude", "sub/skipme.txt",
        "--exclude", f"{h.as_posix()}/sub/other.txt",
        "--exclude", "nothing_matches_this",
        "--max-text-mb", "1",
        timeout=240,
    )  # fmt: skip
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with OmniStore("h", path=str(root / "st")) as store:
        payloads = [p.payload for p in store.scroll()]
    return {"root": root, "h": h, "result": result, "payloads": payloads, "rss_kib": max(rss_kib, before)}


def _listed(stdout: str, heading: str) -> str:
    return stdout.split(heading, 1)[1].split("failed:\n", 1)[0] if heading in stdout else ""


def _paths(hostile: dict[str, object]) -> set[str]:
    return {Path(p["metadata"]["path"]).name for p in hostile["payloads"]}  # type: ignore[attr-defined,index]


def test_a_name_that_is_not_utf8_fails_alone(hostile: dict[str, object]) -> None:
    result = hostile["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 1, explain(result)
    assert "good.txt" in _paths(hostile) and "deep.txt" in _paths(hostile)
    line = next(line for line in result.stdout.splitlines() if "name.txt" in line)
    assert "bad\\xffname.txt" in line and "not valid UTF-8" in line
    assert len(line) < 200  # one line, not an engine traceback


def test_symlink_loops_are_listed_as_failed(hostile: dict[str, object]) -> None:
    result = hostile["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert "Traceback" not in result.stderr, explain(result)
    for name in ("selfloop.txt", "a_loop", "b_loop"):
        line = next(line for line in result.stdout.splitlines() if f"{name}:" in line)
        assert "symlink loop" in line


def test_a_fifo_is_not_opened_but_reported(
    hostile: dict[str, object], tmp_path: Path, native_checkpoint: Path
) -> None:
    result = hostile["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    line = next(line for line in result.stdout.splitlines() if "pipe.txt" in line)
    assert "not a regular file (a FIFO)" in line
    given = tmp_path / "given.txt"
    os.mkfifo(given)
    direct = _index(given, "-c", "x", "--store", tmp_path / "st", "--model", native_checkpoint, timeout=120)
    assert direct.returncode == 1, explain(direct)
    assert "given.txt: not a regular file (a FIFO)" in direct.stdout.split("failed:", 1)[1]


def test_links_leaving_the_folder_are_skipped_and_listed(hostile: dict[str, object]) -> None:
    result = hostile["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert not any(SECRET in json.dumps(p) for p in hostile["payloads"])  # type: ignore[attr-defined]
    skipped = _listed(result.stdout, "skipped (not media or text):\n")
    for name in ("host.txt", "outlink"):
        line = next(line for line in skipped.splitlines() if name in line)
        assert "link leaves the indexed folder" in line
    assert "inlink.txt" not in result.stdout  # a link inside the folder is the file it names, once


def test_links_out_are_indexed_when_asked(tmp_path: Path, native_checkpoint: Path) -> None:
    h = tmp_path / "h"
    h.mkdir()
    (h / "own.txt").write_text("own note")
    (tmp_path / "secret.txt").write_text(SECRET)
    (h / "host.txt").symlink_to(tmp_path / "secret.txt")
    args = ("-c", "f", "--store", tmp_path / "st", "--model", native_checkpoint, "--follow-external-links")
    result = _index(h, *args)
    assert result.returncode == 0, explain(result)
    assert "2 added" in result.stdout


def test_reads_are_bounded_and_the_text_cap_is_reported(hostile: dict[str, object]) -> None:
    result = hostile["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert int(hostile["rss_kib"]) < 2_500_000, "the 3 GB sparse file was read whole"  # type: ignore[call-overload]
    huge = next(line for line in result.stdout.splitlines() if "huge.txt" in line)
    assert "cannot read as text" in huge
    big = next(line for line in result.stdout.splitlines() if "big.txt" in line)
    assert "text file over 1 MiB" in big and "--max-text-mb" in big
    assert "big.txt" not in _paths(hostile)


def test_exclude_matches_folder_names_and_relative_paths(hostile: dict[str, object]) -> None:
    result = hostile["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert _paths(hostile) == {"good.txt", "deep.txt"}
    assert "x.txt" not in result.stdout and "skipme" not in result.stdout and "other.txt" not in result.stdout
    assert "warning: --exclude 'nothing_matches_this' matched nothing" in result.stderr
    assert "warning: --exclude 'node_modules'" not in result.stderr


def test_store_removed_mid_run_stops_with_exit_9(tmp_path: Path, native_checkpoint: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):  # recordings: the store is most likely removed while one chunk is embedded
        make_audio(docs / f"a{i:02d}.wav", seconds=2.0, freq=200.0 + 10 * i, seed=i)
    store = tmp_path / "st"
    process = start(
        "index", docs, "-c", "gone", "--store", store, "--model", native_checkpoint, "-q", "--batch-size", "2"
    )
    wal = store / "edge" / "gone" / "shard" / "wal"
    deadline = time.monotonic() + 300
    while not wal.is_dir() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    time.sleep(0.5)
    assert process.poll() is None, "the index finished before the store was removed"
    while store.exists():  # the run keeps writing files while they are removed
        shutil.rmtree(store, ignore_errors=True)
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        raise
    assert process.returncode == 9, f"exit {process.returncode}\n{stdout[-2000:]}\n{stderr[-2000:]}"
    assert "stopped" in stderr
    assert len((stdout + stderr).splitlines()) < 20


def test_a_store_removed_between_adds_fails_the_next_write(embedder: object, tmp_path: Path) -> None:
    from omni_rag import OmniRetriever
    from omni_rag.store import StoreWriteError

    store = OmniStore("gone", path=str(tmp_path / "st"))
    retriever = OmniRetriever(embedder, store)  # type: ignore[arg-type]
    retriever.add(["first note"])
    shutil.rmtree(tmp_path / "st")
    with pytest.raises(StoreWriteError, match=r"removed|cannot record"):
        retriever.add(["second note"])  # never acknowledged into deleted files, never a raw OSError
    with pytest.raises(StoreWriteError, match="was removed"):
        store.delete(["anything"])
    store.close()
