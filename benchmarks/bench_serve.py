"""``omni-rag serve`` under load vs ``OmniRetriever.search`` in-process, text queries, tiny checkpoint.

    python benchmarks/bench_serve.py [--requests 240] [--clients 1,8,64] [--batch-wait-ms 2]

Indexes ``examples/media`` into a temporary store, times ``OmniRetriever.search`` called
sequentially in this process (the baseline), then starts ``omni-rag serve`` on that store and
times ``POST /api/search`` from 1, 8 and 64 concurrent clients (asyncio + httpx, each client
sending its next query when the last one answered). Queries cycle through the text queries of
``examples/queries/queries.json``. Reports p50/p99 latency and queries/s per level, the server's
overhead at one client (its p50 minus the in-process p50) and the speed-up over the sequential
queries/s, with the forward passes the server ran (micro-batching shares them).

The client runs on the same machine as the server, so they share its CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUERY_FILE = REPO / "examples" / "queries" / "queries.json"
COLLECTION = "bench"


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
    """``examples/media`` indexed as ``make demo`` does."""
    from omni_rag import OmniEmbedder
    from omni_rag.cli import index_scan, open_store, scan_paths

    store = open_store(COLLECTION, path=root / "store")
    try:
        from omni_rag.retriever import OmniRetriever

        embedder = OmniEmbedder.from_pretrained(checkpoint, device="cpu")
        index_scan(
            OmniRetriever(embedder, store),
            scan_paths([REPO / "examples" / "media"], exclude=("*.md", "*.py")),
            quiet=True,
        )
    finally:
        store.close()
    return root / "store"


def in_process(store_path: Path, checkpoint: Path, n: int) -> Level:
    """``OmniRetriever.search`` called one query after another: the baseline."""
    from omni_rag import OmniEmbedder
    from omni_rag.cli import open_store
    from omni_rag.retriever import OmniRetriever

    store = open_store(COLLECTION, path=store_path, must_exist=True)
    try:
        retriever = OmniRetriever(OmniEmbedder.from_pretrained(checkpoint, device="cpu"), store)
        queries = texts()
        for query in queries:  # warm-up
            retriever.search(query, k=10)
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            began = time.perf_counter()
            retriever.search(queries[i % len(queries)], k=10)
            latencies.append(time.perf_counter() - began)
        return Level("in-process `OmniRetriever.search`, sequential", latencies, time.perf_counter() - start)
    finally:
        store.close()


def start_server(store_path: Path, checkpoint: Path, port: int, wait_ms: float) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).with_name("omni-rag")),
        "serve",
        "-c",
        COLLECTION,
        "--store",
        str(store_path),
    ]
    command += ["--model", str(checkpoint), "--port", str(port), "--batch-wait-ms", str(wait_ms)]
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


async def clients(url: str, concurrency: int, n: int) -> Level:
    """``concurrency`` clients sharing ``n`` queries, each sending its next when answered."""
    queries = texts()
    latencies: list[float] = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def one_client() -> None:
            for i in counter:
                began = time.perf_counter()
                response = await client.post("/api/search", json={"text": queries[i % len(queries)], "k": 10})
                latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    raise SystemExit(f"HTTP {response.status_code}: {response.text}")

        for query in queries:  # warm-up (poster-free, model warm)
            await client.post("/api/search", json={"text": query, "k": 10})
        before = (await client.get("/api/health")).json()["batches"]["passes"]
        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        passes = (await client.get("/api/health")).json()["batches"]["passes"] - before
    return Level(
        f"`omni-rag serve`, {concurrency} client{'s' if concurrency > 1 else ''}", latencies, wall, passes
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=240, help="queries per level")
    parser.add_argument("--clients", default="1,8,64", help="comma list of concurrency levels")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omni_rag.testing import tiny_checkpoint

    checkpoint = tiny_checkpoint("native")
    with tempfile.TemporaryDirectory() as folder:
        store = build_store(Path(folder), checkpoint)
        levels = [in_process(store, checkpoint, args.requests)]
        server = start_server(store, checkpoint, args.port, args.batch_wait_ms)
        try:
            for concurrency in (int(c) for c in args.clients.split(",")):
                levels.append(
                    asyncio.run(clients(f"http://127.0.0.1:{args.port}", concurrency, args.requests))
                )
        finally:
            server.terminate()
            server.wait(30)
    report(levels)


def report(levels: list[Level]) -> None:
    print(f"CPUs: {os.cpu_count()}; queries: the {len(texts())} texts of examples/queries/queries.json, k=10")
    print("| run | queries | p50 ms | p99 ms | queries/s | forward passes |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        print(level.row())
    base, served = levels[0], levels[1:]
    if served:
        one = served[0]
        overhead = (one.percentile(0.5) - base.percentile(0.5)) * 1e3
        print(f"\nserver overhead at {one.name.split(', ')[1]}: {overhead:+.1f} ms p50")
        for level in served:
            print(f"{level.name}: {level.qps / base.qps:.2f}x the sequential in-process queries/s")
    print(f"(median of per-query latencies; {statistics.mean(base.latencies) * 1e3:.1f} ms mean in-process)")


if __name__ == "__main__":
    main()
