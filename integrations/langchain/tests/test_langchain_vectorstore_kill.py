"""``OmniVectorStore.add_texts`` killed with SIGKILL mid-write: nothing acknowledged is lost, a re-run
completes without duplicates (the engine's durability, reached through the adapter)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_omni_rag import OmniVectorStore

_WRITER = textwrap.dedent(
    """
    import sys
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_omni_rag import OmniVectorStore

    path, stop = sys.argv[1], int(sys.argv[2])
    store = OmniVectorStore(DeterministicFakeEmbedding(size=8), collection_name="drill", path=path)
    for i in range(0, stop, 20):
        ids = [f"t{j}" for j in range(i, min(i + 20, stop))]
        store.add_texts([f"text {j}" for j in range(i, i + len(ids))], ids=ids, batch_size=20)
        print("acked", ids[-1], flush=True)
    """
)


def _writer(path: Path, stop: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )


def _store(path: Path) -> OmniVectorStore:
    return OmniVectorStore(DeterministicFakeEmbedding(size=8), collection_name="drill", path=path)


def test_kill_9_mid_add_texts_loses_nothing_acknowledged_and_rerun_completes(tmp_path: Path) -> None:
    path = tmp_path / "store"
    proc = _writer(path, 1_000_000)
    acked = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acked = int(line.split()[1][1:])
        if acked >= 1000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = _store(path)
    wanted = [f"t{j}" for j in range(acked + 1)]
    assert [d.id for d in store.get_by_ids(wanted)] == wanted, "an acknowledged text was lost"
    before = store.store.count()
    store.store.close()
    rerun = _writer(path, 2000)
    assert rerun.wait(timeout=300) == 0
    store = _store(path)
    assert store.store.count() == max(before, 2000)  # replaced, never duplicated
    assert store.get_by_ids(["t1999"])[0].page_content == "text 1999"
