"""Benchmark OmniStore's engines against numpy brute force on the same vectors, in one run.

Run: ``python benchmarks/bench_store.py --sizes 20000 100000`` (audio+video, 2048 d; vectors in
clusters of ``--cluster`` items like a recording's segments, ``--cluster 1`` for pure noise). For
each size it reports, per engine (Qdrant Edge embedded, qdrant-client in-memory, numpy brute
force): upsert points/s, index build time and peak memory (upsert and build apart), search p50/p95
per fusion mode, and top-10 overlap with exact fusion for queries near a stored item (cosine about
0.7) and for queries with no close match (random directions).

Edge runs twice: ``edge, optimize()`` writes with automatic builds off and builds once (the
optimised figure), ``edge, API path`` writes through ``OmniStore.upsert`` in batches of
``--api-batch`` as a user of the Python API does, with the index maintaining itself, and searches
at once (no ``optimize()``). Then ``incremental`` adds ``--added`` points to that collection and
reports the time until everything is indexed again (write plus build) next to the full build.

qdrant-client's in-memory mode is numpy over Python dicts: it runs only at sizes up to
``--client-max`` and on ``--client-queries`` queries of each kind, and says so in the output.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient

from omni_rag.store import OmniStore

STREAMS = ("audio", "video")
#: (label, search keyword arguments): audio+video, the paper's "separately" column; "audio" is one stream.
AV = ["audio", "video"]
MODES: tuple[tuple[str, dict[str, object]], ...] = (
    ("mean", {"fusion": "mean", "streams": AV}),
    ("mean ef=512", {"fusion": "mean", "streams": AV, "hnsw_ef": 512}),
    ("max", {"fusion": "max", "streams": AV}),
    ("rrf", {"fusion": "rrf", "streams": AV}),
    ("dbsf", {"fusion": "dbsf", "streams": AV}),
    ("audio", {"streams": ["audio"]}),
)


@dataclass
class ModeResult:
    """Latency and top-10 overlap with exact fusion of one search mode."""

    p50_ms: float
    p95_ms: float
    overlap_near: float | None
    overlap_far: float | None


@dataclass
class EngineResult:
    """One engine at one size."""

    engine: str
    points: int
    queries: int
    upsert_pts_s: float | None = None
    upsert_peak: PeakMemory | None = None
    build_s: float | None = None
    build_peak: PeakMemory | None = None
    modes: dict[str, ModeResult] = field(default_factory=dict)
    incremental: Incremental | None = None


@dataclass
class Incremental:
    """Points added to an indexed collection: time until all are indexed, and search speed."""

    added: int
    write_s: float
    build_s: float
    p50_before_build_ms: float
    p50_after_build_ms: float


# ---------------------------------------------------------------- memory


class PeakMemory:
    """Peak anonymous and file-backed RSS of this process, sampled from a child process.

    The kernel's own peak (VmHWM) counts the store's memory-mapped files, which the page cache can
    drop under pressure; the heap (RssAnon) is what must fit. A child samples both because Edge's
    upserts and HNSW build hold the GIL, so a thread would not run while they do.
    """

    def __init__(self, every_s: float = 0.1) -> None:
        self.every_s = every_s
        self.anon_mib = self.file_mib = float("nan")

    def __enter__(self) -> PeakMemory:
        self._parent, child = multiprocessing.Pipe()
        self._proc = multiprocessing.Process(
            target=_sample, args=(os.getpid(), self.every_s, child), daemon=True
        )
        self._proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._parent.send("stop")
        self.anon_mib, self.file_mib = self._parent.recv()
        self._proc.join()
        del self._parent, self._proc  # plain numbers from here on (the results are deep-copied)

    def __str__(self) -> str:
        return f"{self.anon_mib:.0f}+{self.file_mib:.0f}"


def _peak_json(peak: PeakMemory) -> dict[str, float]:
    return {"anon_mib": peak.anon_mib, "file_mib": peak.file_mib}


def _rss_kib(pid: int) -> tuple[int, int]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["RssAnon"].split()[0]), int(fields["RssFile"].split()[0])


def _sample(pid: int, every_s: float, conn: Any) -> None:
    anon = file = 0
    while not conn.poll(every_s):
        with contextlib.suppress(OSError, KeyError):
            a, f = _rss_kib(pid)
            anon, file = max(anon, a), max(file, f)
    conn.recv()
    conn.send((anon / 1024, file / 1024))


# ---------------------------------------------------------------- data and exact reference


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, 10_000):  # in blocks so float64 temporaries stay small
        block = rng.standard_normal((min(10_000, n - lo), dim), dtype=np.float32)
        out[lo : lo + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def corpus(rng: np.random.Generator, n: int, dim: int, cluster: int) -> tuple[np.ndarray, np.ndarray]:
    """Audio and video vectors shaped like real segment embeddings rather than pure noise.

    Items come in groups of about ``cluster`` (the segments of one recording, the takes of one
    topic) around a shared direction, and each item's video correlates with its audio. With
    ``cluster=1`` every vector is independent noise: the worst case for any index, where the top 10
    after the first hit are near-ties.
    """
    if cluster <= 1:
        return unit_rows(rng, n, dim), unit_rows(rng, n, dim)
    centres = unit_rows(rng, max(1, n // cluster), dim)
    audio = centres[rng.integers(0, len(centres), n)] + 0.8 * unit_rows(rng, n, dim)
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    video = audio + unit_rows(rng, n, dim)
    video /= np.linalg.norm(video, axis=1, keepdims=True)
    return audio, video


def make_queries(
    rng: np.random.Generator, audio: np.ndarray, video: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Near queries (cosine ~0.7 to a stored item's mean direction) and random far queries."""
    dim = audio.shape[1]
    picks = rng.choice(len(audio), size=count, replace=False)
    centre = audio[picks] + video[picks]
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    noise = unit_rows(rng, count, dim)
    near = centre + noise  # two orthogonal-ish unit vectors: cosine ~0.71 to the centre
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    return near.astype(np.float32), unit_rows(rng, count, dim)


def exact_top(audio: np.ndarray, video: np.ndarray, q: np.ndarray, label: str, k: int = 10) -> np.ndarray:
    """Exact top k (row indices) of one mode, the numpy brute force the engines are compared with."""
    a = audio @ q
    if label == "audio":
        scores = a
    elif label == "max":
        scores = np.maximum(a, video @ q)
    else:  # mean, and the reference set for rrf/dbsf overlap: exact mean fusion
        scores = (a + video @ q) * 0.5
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


# ---------------------------------------------------------------- timing


def timed(fn: Callable[[np.ndarray], list[int]], queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    times, results = [], []
    fn(queries[0])  # warm-up (page-in, caches)
    for q in queries:
        t0 = time.perf_counter()
        results.append(fn(q))
        times.append((time.perf_counter() - t0) * 1000)
    return times, results


def overlap(found: list[list[int]], truth: list[np.ndarray]) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))


def measure(
    search: Callable[[np.ndarray, str], list[int]],
    label: str,
    near: np.ndarray,
    far: np.ndarray,
    truth: dict[str, tuple[list[np.ndarray], list[np.ndarray]]],
) -> ModeResult:
    ref = "mean" if label.startswith(("mean", "rrf", "dbsf")) else label
    t_near, f_near = timed(lambda q: search(q, label), near)
    t_far, f_far = timed(lambda q: search(q, label), far)
    times = t_near + t_far
    return ModeResult(
        p50_ms=float(np.percentile(times, 50)),
        p95_ms=float(np.percentile(times, 95)),
        overlap_near=overlap(f_near, truth[ref][0]),
        overlap_far=overlap(f_far, truth[ref][1]),
    )


# ---------------------------------------------------------------- engines


def store_batches(audio: np.ndarray, video: np.ndarray, batch: int) -> Iterator[tuple[list[str], list[dict]]]:
    for lo in range(0, len(audio), batch):
        hi = min(lo + batch, len(audio))
        yield (
            [str(i) for i in range(lo, hi)],
            [{"audio": audio[i], "video": video[i]} for i in range(lo, hi)],
        )


def run_store(
    name: str, store: OmniStore, audio: np.ndarray, video: np.ndarray, queries: tuple[np.ndarray, np.ndarray],
    truth: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], batch: int, *, optimize: bool = True,
) -> EngineResult:  # fmt: skip
    result = EngineResult(name, len(audio), 2 * len(queries[0]))
    gc.collect()
    with PeakMemory() as result.upsert_peak:
        t0 = time.perf_counter()
        for ids, vectors in store_batches(audio, video, batch):
            store.upsert(ids, vectors)
        result.upsert_pts_s = len(audio) / (time.perf_counter() - t0)
    print(f"  {name:<14} upserts {result.upsert_pts_s:.0f} points/s", flush=True)
    if optimize:
        with PeakMemory() as result.build_peak:
            t0 = time.perf_counter()
            store.optimize()
            result.build_s = time.perf_counter() - t0
        print(f"  {name:<14} index build {result.build_s:.1f} s", flush=True)
    print(f"  {name:<14} {store.index_info()}", flush=True)
    kwargs = dict(MODES)

    def search(q: np.ndarray, label: str) -> list[int]:
        return [int(h.id) for h in store.search(q, limit=10, **kwargs[label])]  # type: ignore[arg-type]

    for label, options in MODES:
        if "hnsw_ef" in options and not name.startswith("edge"):
            continue  # qdrant-client's local mode has no index: the effort changes nothing
        result.modes[label] = measure(search, label, *queries, truth)
        print(f"  {name:<14} {label:<12} p50 {result.modes[label].p50_ms:8.2f} ms", flush=True)
    return result


def run_incremental(store: OmniStore, added: tuple[np.ndarray, np.ndarray], near: np.ndarray) -> Incremental:
    """Add points to an indexed collection: write, search at once, then build what they need."""
    audio, video = added
    start = store.count()
    t0 = time.perf_counter()
    ids = [str(start + i) for i in range(len(audio))]
    store.upsert(ids, [{"audio": a, "video": v} for a, v in zip(audio, video, strict=True)])
    write_s = time.perf_counter() - t0
    av = dict(MODES)["mean"]

    def p50() -> float:
        times, _ = timed(lambda q: [int(h.id) for h in store.search(q, limit=10, **av)], near)  # type: ignore[arg-type]
        return float(np.percentile(times, 50))

    before = p50()
    t0 = time.perf_counter()
    store.optimize()
    build_s = time.perf_counter() - t0
    return Incremental(len(audio), write_s, build_s, before, p50())


def run_numpy(
    audio: np.ndarray, video: np.ndarray, queries: tuple[np.ndarray, np.ndarray],
    truth: dict[str, tuple[list[np.ndarray], list[np.ndarray]]],
) -> EngineResult:  # fmt: skip
    result = EngineResult("numpy brute", len(audio), 2 * len(queries[0]))
    for label in ("mean", "max", "audio"):
        result.modes[label] = measure(
            lambda q, lab: exact_top(audio, video, q, lab).tolist(), label, *queries, truth
        )
    return result


# ---------------------------------------------------------------- driver


def bench_size(n: int, args: argparse.Namespace) -> list[EngineResult]:
    rng = np.random.default_rng(args.seed + n)
    audio, video = corpus(rng, n, args.dim, args.cluster)
    near, far = make_queries(rng, audio, video, args.queries)
    truth = {
        label: (
            [exact_top(audio, video, q, label) for q in near],
            [exact_top(audio, video, q, label) for q in far],
        )
        for label in ("mean", "max", "audio")
    }
    extra = corpus(rng, args.added, args.dim, args.cluster)
    results = [run_numpy(audio, video, (near, far), truth)]
    if not args.skip_optimized:
        with (
            tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.tmp) as folder,
            OmniStore("bench", path=folder, write_batch_size=args.batch, index_threshold=0) as store,
        ):
            results.append(run_store("edge, optimize()", store, audio, video, (near, far), truth, args.batch))
    with (
        tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.tmp) as folder,
        OmniStore("bench", path=folder, write_batch_size=args.batch) as store,
    ):
        api = run_store(
            "edge, API path", store, audio, video, (near, far), truth, args.api_batch, optimize=False
        )
        api.incremental = run_incremental(store, extra, near)
        print(f"  incremental    {api.incremental}", flush=True)
        results.append(api)
    if n <= args.client_max:
        cq = args.client_queries
        sub = {k: (v[0][:cq], v[1][:cq]) for k, v in truth.items()}
        with OmniStore("bench", client=QdrantClient(":memory:"), write_batch_size=args.batch) as store:
            results.append(
                run_store("qdrant-client", store, audio, video, (near[:cq], far[:cq]), sub, args.batch)
            )
    else:
        print(f"  qdrant-client in-memory skipped at {n} points (> --client-max {args.client_max})")
    return results


def print_table(results: list[EngineResult]) -> None:
    print(
        f"\n{'engine':<14} {'points':>7} {'queries':>7} {'upsert/s':>9} {'build s':>8}",
        f"{'peak MiB upsert':>16} {'peak MiB build':>16}",
    )
    for r in results:
        up = f"{r.upsert_pts_s:9.0f}" if r.upsert_pts_s else f"{'-':>9}"
        build = f"{r.build_s:8.1f}" if r.build_s is not None else f"{'-':>8}"
        peaks = f"{r.upsert_peak!s:>16} {r.build_peak!s:>16}" if r.build_peak else f"{'-':>16} {'-':>16}"
        print(f"{r.engine:<14} {r.points:>7} {r.queries:>7} {up} {build} {peaks}")
    print(
        f"\n{'engine':<14} {'points':>7} {'mode':<12} {'p50 ms':>8} {'p95 ms':>8}",
        f"{'top10 near':>10} {'top10 far':>10}",
    )
    for r in results:
        for label, m in r.modes.items():
            print(
                f"{r.engine:<14} {r.points:>7} {label:<12} {m.p50_ms:8.2f} {m.p95_ms:8.2f} "
                f"{m.overlap_near:10.3f} {m.overlap_far:10.3f}"
            )
    for r in results:
        if r.incremental is not None:
            inc = r.incremental
            print(
                f"\nincremental: {inc.added} points added to {r.points}: written in {inc.write_s:.1f} s, "
                f"built in {inc.build_s:.1f} s; mean p50 {inc.p50_before_build_ms:.2f} ms before the "
                f"build, {inc.p50_after_build_ms:.2f} ms after"
            )
    print("(rrf/dbsf overlap is against exact mean fusion; they rank differently by design)")
    print("(peak MiB: heap + memory-mapped store files; the page cache can drop the second under pressure)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=50, help="near and far queries each")
    parser.add_argument("--batch", type=int, default=512, help="upsert batch size")
    parser.add_argument("--client-max", type=int, default=20_000, help="largest size for qdrant-client")
    parser.add_argument("--client-queries", type=int, default=5, help="qdrant-client queries of each kind")
    parser.add_argument(
        "--cluster", type=int, default=10, help="items per shared direction (1: independent random vectors)"
    )
    parser.add_argument("--api-batch", type=int, default=1000, help="upsert batch of the API-path row")
    parser.add_argument("--added", type=int, default=1000, help="points added in the incremental row")
    parser.add_argument("--skip-optimized", action="store_true", help="leave out the optimize() row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="folder for the Edge store (default: system temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Local mode performs exact")
    results: list[EngineResult] = []
    for n in args.sizes:
        print(f"size {n} x {len(STREAMS)} x {args.dim}", flush=True)
        results += bench_size(n, args)
        gc.collect()
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1, default=_peak_json))


if __name__ == "__main__":
    main()
