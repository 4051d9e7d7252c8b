"""Benchmark OmniStore in embedded mode: upsert throughput, search latency per fusion mode, scaling.

Run: ``python benchmarks/bench_store.py --points 20000`` (random unit vectors, 4 streams per point).
Path mode commits every point to sqlite on its own inside qdrant-client, so it is timed on
``--path-points`` points (default: all) to keep the run bounded on slow disks.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from omni_rag.store import STREAMS, OmniStore

FUSIONS = ("mean", "max", "rrf", "dbsf")


def rss_mib() -> float:
    """Resident memory now (not the peak), so growth per size step is visible."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def batches(
    start: int, stop: int, dim: int, batch: int, seed: int
) -> Iterator[tuple[list[str], list[dict[str, np.ndarray]], list[dict]]]:
    """Random points generated batch by batch so the generator never holds the whole corpus."""
    for lo in range(start, stop, batch):
        hi = min(lo + batch, stop)
        rng = np.random.default_rng(seed + lo)
        block = rng.standard_normal((hi - lo, len(STREAMS), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=2, keepdims=True)
        ids = [f"p{i}" for i in range(lo, hi)]
        vectors: list[dict[str, np.ndarray]] = [
            {s: block[i, j] for j, s in enumerate(STREAMS)} for i in range(hi - lo)
        ]
        payloads: list[dict] = [
            {"source": f"video-{i // 8}.mp4", "segment_index": i % 8} for i in range(lo, hi)
        ]
        yield ids, vectors, payloads


def fill(store: OmniStore, start: int, stop: int, dim: int, seed: int = 0) -> float:
    """Upsert points [start, stop); returns points per second."""
    t0 = time.perf_counter()
    for ids, vectors, payloads in batches(start, stop, dim, 1000, seed):
        store.upsert(ids, vectors, payloads)
    return (stop - start) / (time.perf_counter() - t0)


def latencies(store: OmniStore, dim: int, queries: int, limit: int) -> dict[str, dict[str, float]]:
    """p50 / p95 milliseconds of ``search`` per fusion mode (plus audio-only and search_groups)."""
    rng = np.random.default_rng(123)
    qs = rng.standard_normal((queries, dim), dtype=np.float32)
    cases: dict[str, dict] = {f: {"fusion": f} for f in FUSIONS}
    cases["mean audio-only"] = {"fusion": "mean", "streams": ["audio"]}
    out: dict[str, dict[str, float]] = {}
    for name, kwargs in [*cases.items(), ("groups mean", {"groups": True})]:
        times = []
        store.search(qs[0], limit=limit)  # warm-up
        for q in qs:
            t0 = time.perf_counter()
            if kwargs.get("groups"):
                store.search_groups(q, limit=limit, group_size=3)
            else:
                store.search(q, limit=limit, **kwargs)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument(
        "--path-points", type=int, default=None, help="points for path mode (default --points)"
    )
    parser.add_argument(
        "--sizes", default="", help="comma-separated sizes above --points for the :memory: scaling run"
    )
    parser.add_argument("--skip-path", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {"dim": args.dim, "streams": len(STREAMS)}

    base = rss_mib()
    store = OmniStore("bench")
    pps = fill(store, 0, args.points, args.dim)
    report["memory"] = {
        "points": args.points,
        "upsert_points_per_s": round(pps, 1),
        "rss_growth_mib": round(rss_mib() - base, 1),
        "search": latencies(store, args.dim, args.queries, args.limit),
    }
    print(json.dumps(report["memory"], indent=2), flush=True)

    scaling = []
    done = args.points
    for size in sorted(int(s) for s in args.sizes.split(",") if s):
        fill(store, done, size, args.dim)
        done = size
        lat = latencies(store, args.dim, max(10, args.queries // 2), args.limit)
        row = {"points": size, "rss_mib": round(rss_mib(), 1), **{k: lat[k]["p95_ms"] for k in FUSIONS}}
        scaling.append(row)
        print(json.dumps(row), flush=True)
    report["memory_scaling_p95_ms"] = scaling
    store.close()
    del store
    gc.collect()

    if not args.skip_path:
        n = args.path_points or args.points
        with tempfile.TemporaryDirectory() as tmp:
            store = OmniStore("bench", path=str(Path(tmp) / "db"))
            pps = fill(store, 0, n, args.dim)
            store.close()
            t0 = time.perf_counter()
            store = OmniStore("bench", path=str(Path(tmp) / "db"))
            reopen_s = time.perf_counter() - t0
            report["path"] = {
                "points": n,
                "upsert_points_per_s": round(pps, 1),
                "reopen_s": round(reopen_s, 2),
                "search": latencies(store, args.dim, args.queries, args.limit),
            }
            store.close()
        print(json.dumps(report["path"], indent=2), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
