"""``omni-rag serve`` under load vs ``OmniRetriever.search`` in-process, text queries, tiny checkpoint.

    python benchmarks/bench_serve.py [--requests 240] [--clients 1,8,64]

Indexes ``examples/media`` into a temporary store, starts ``omni-rag serve`` on a copy of it,
then times ``OmniRetriever.search`` in this process (the baseline) and ``POST /api/search`` from
one client query by query in turn (so both see the same load from other programs), then from 8
and 64 concurrent clients (asyncio keep-alive connections, each client sending its next query
when its last one was answered). Queries cycle through the text queries of
``examples/queries/queries.json``. Reports p50/p99 latency and queries/s per level, the server's
overhead at one client (its p50 minus the in-process p50) and the speed-up over the sequential
queries/s, with the forward passes the server ran (micro-batching shares them). A last line runs
the server's work in this process, 64 queries per ``embed_queries`` and ``search_vectors`` call,
no HTTP, one thread: what batching alone saves.

The client runs on the same machine as the server, so they share its CPUs. OpenMP threads are
told to sleep rather than spin when idle (``OMP_WAIT_POLICY=PASSIVE`` unless set), in this process
and the server: on a 2-core machine the idle side's spinning threads otherwise take the cores the
busy side needs, which made the in-process baseline 3x slower than the server in one test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUERY_FILE = REPO / "examples" / "queries" / "queries.json"
COLLECTION = "bench"
OMNI_RAG = Path(sys.executable).with_name("omni-rag")
#: Times each side runs the query list before timing: a fresh model stays slow for its first ~100
#: queries here (the same texts, timed one by one, take 3-4x longer than later).
WARM_UP_ROUNDS = 15


@dataclass(frozen=True)
class Level:
    """Latencies of one run (seconds) and its wall time."""

    name: str
    latencies: list[float]
    wall_s: float
    passes: int | None = None

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.wall_s

    def row(self) -> str:
        passes = "" if self.passes is None else f"{self.passes}"
        return (
            f"| {self.name} | {len(self.latencies)} | {self.percentile(0.5) * 1e3:.1f} | "
            f"{self.percentile(0.99) * 1e3:.1f} | {self.qps:.1f} | {passes} |"
        )


def texts() -> list[str]:
    return [entry["query"] for entry in json.loads(QUERY_FILE.read_text())["text"]]


def build_store(root: Path, checkpoint: Path) -> Path:
    """``examples/media`` indexed by ``omni-rag index`` in a process of its own: indexing leaves
    decoder and preparation threads behind that would slow whatever this process times next."""
    store = root / "store"
    command = [
        str(OMNI_RAG),
        "index",
        str(REPO / "examples" / "media"),
        "-c",
        COLLECTION,
        "--store",
        str(store),
    ]
    command += ["--model", str(checkpoint), "--exclude", "*.md", "--exclude", "*.py", "-q"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return store


async def interleaved(retriever: Any, port: int, n: int) -> tuple[Level, Level]:
    """The baseline and one client, query by query in turn, so both see the same machine load.

    ``OmniRetriever.search`` runs in this process on one copy of the store while the server
    (another process, on its own copy) idles, then the same query goes to the server while this
    process waits: alternating cancels most of the noise other programs put on a shared machine.
    """
    queries = texts()
    client = RawClient("127.0.0.1", port)
    for query in queries * WARM_UP_ROUNDS:
        retriever.search(query, k=10)
        await client.post_json("/api/search", {"text": query, "k": 10})
    local: list[float] = []
    served: list[float] = []
    for i in range(n):
        query = queries[i % len(queries)]
        began = time.perf_counter()
        retriever.search(query, k=10)
        local.append(time.perf_counter() - began)
        began = time.perf_counter()
        status, body = await client.post_json("/api/search", {"text": query, "k": 10})
        served.append(time.perf_counter() - began)
        if status != 200:
            raise SystemExit(f"HTTP {status}: {body[:300]!r}")
    await client.close()
    return (
        Level("in-process `OmniRetriever.search`, sequential", local, sum(local)),
        Level("`omni-rag serve`, 1 client (alternating with the line above)", served, sum(served), n),
    )


def start_server(store_path: Path, checkpoint: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(OMNI_RAG),
        "serve",
        "-c",
        COLLECTION,
        "--store",
        str(store_path),
    ]
    command += ["--model", str(checkpoint), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("omni-rag serve did not start")


class RawClient:
    """One keep-alive HTTP/1.1 connection with hand-written requests: a load generator light enough
    that 64 of them in one process measure the server, not the client library."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict[str, object]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        self.writer.write(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def clients(port: int, concurrency: int, n: int) -> Level:
    """``concurrency`` clients sharing ``n`` queries, each sending its next when answered."""
    queries = texts()
    latencies: list[float] = []
    counter = iter(range(n))
    pool = [RawClient("127.0.0.1", port) for _ in range(concurrency)]

    async def one_client(client: RawClient) -> None:
        for i in counter:
            began = time.perf_counter()
            status, body = await client.post_json("/api/search", {"text": queries[i % len(queries)], "k": 10})
            latencies.append(time.perf_counter() - began)
            if status != 200:
                raise SystemExit(f"HTTP {status}: {body[:300]!r}")

    for query in queries * WARM_UP_ROUNDS:  # model, store and connections
        await pool[0].post_json("/api/search", {"text": query, "k": 10})
    before = passes(port)
    start = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in pool))
    wall = time.perf_counter() - start
    done = passes(port) - before
    await asyncio.gather(*(c.close() for c in pool))
    return Level(
        f"`omni-rag serve`, {concurrency} client{'s' if concurrency > 1 else ''}", latencies, wall, done
    )


def passes(port: int) -> int:
    """Forward passes the server has run so far."""
    return int(httpx.get(f"http://127.0.0.1:{port}/api/health").json()["batches"]["passes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=240, help="queries per level")
    parser.add_argument("--clients", default="1,8,64", help="comma list of concurrency levels")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads here or in the server
    from omni_rag.testing import tiny_checkpoint

    checkpoint = tiny_checkpoint("native")
    with tempfile.TemporaryDirectory() as folder:
        store = build_store(Path(folder), checkpoint)
        shutil.copytree(store, Path(folder) / "server-store")
        server = start_server(Path(folder) / "server-store", checkpoint, args.port)
        try:
            levels = list(measure(store, checkpoint, args))
        finally:
            server.terminate()
            server.wait(30)
    report(levels)


def measure(store_path: Path, checkpoint: Path, args: argparse.Namespace) -> list[Level]:
    """Baseline and one client in turn, then each other concurrency level."""
    from omni_rag import OmniEmbedder
    from omni_rag.cli import open_store
    from omni_rag.retriever import OmniRetriever

    store = open_store(COLLECTION, path=store_path, must_exist=True)
    try:
        retriever = OmniRetriever(OmniEmbedder.from_pretrained(checkpoint, device="cpu"), store)
        levels = list(asyncio.run(interleaved(retriever, args.port, args.requests)))
        levels.append(batched_in_process(retriever, args.requests))
    finally:
        store.close()
    for concurrency in (int(c) for c in args.clients.split(",")):
        if concurrency > 1:
            levels.append(asyncio.run(clients(args.port, concurrency, args.requests)))
    return levels


def batched_in_process(retriever: Any, n: int, batch: int = 64) -> Level:
    """The server's work without HTTP: ``n`` queries embedded and searched ``batch`` at a time, in
    one thread of this process: what batching alone saves. The server can pass it by running HTTP
    (and the next batch's arrival) on the second core while the model works."""
    from omni_rag import Content

    queries = [Content(text=q) for q in texts()]
    chunks = [[queries[i % len(queries)] for i in range(lo, min(lo + batch, n))] for lo in range(0, n, batch)]
    for chunk in chunks[:3]:  # warm-up at this batch size
        retriever.search_vectors(retriever.embedder.embed_queries(chunk, batch_size=batch), k=10)
    latencies: list[float] = []
    for chunk in chunks:
        began = time.perf_counter()
        retriever.search_vectors(retriever.embedder.embed_queries(chunk, batch_size=batch), k=10)
        latencies += [(time.perf_counter() - began) / len(chunk)] * len(chunk)
    return Level(
        f"in-process, {batch} queries per `embed_queries` + `search_vectors` (no HTTP, one thread)",
        latencies,
        sum(latencies),
    )


def report(levels: list[Level]) -> None:
    """The table, then the overhead at one client and the speed-ups over the sequential baseline."""
    print(f"CPUs: {os.cpu_count()}; queries: the {len(texts())} texts of examples/queries/queries.json, k=10")
    print("| run | queries | p50 ms | p99 ms | queries/s | forward passes |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        print(level.row())
    base, one, bound, *more = levels
    overhead = (one.percentile(0.5) - base.percentile(0.5)) * 1e3
    local = base.percentile(0.5) * 1e3
    print(f"\nserver overhead at 1 client: {overhead:+.1f} ms p50 ({local:.1f} ms in-process)")
    for level in [one, *more, bound]:
        print(f"{level.name}: {level.qps / base.qps:.2f}x the sequential in-process {base.qps:.1f} q/s")


if __name__ == "__main__":
    main()
