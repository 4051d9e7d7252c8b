"""Search time against the number of segments a self-maintained store holds (issue 26's open part).

    python benchmarks/bench_store_segments.py --points 20000 --cap 4000 --modes one-shot,api

Writes ``--points`` audio+video points (2048 d, clustered as in ``bench_store.py``) into an
embedded store whose segments stop growing at ``--cap`` points (``SEGMENT_POINTS``, set here for
the experiment), either in one ``optimize()`` after every write (``one-shot``, automatic builds
off) or the API way (``api``: the store builds as points pass its ``index_threshold``), then times
``mean`` searches of near queries at several HNSW efforts and reports the top-10 overlap with exact
``mean`` fusion. Each segment costs a search about the same whatever the effort, so a store kept
the API way searches slower than one built at once when it holds many segments.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np
from bench_store import corpus, exact_top, make_queries, store_batches

import omni_rag.store.edge_engine as edge_engine
from omni_rag.store import OmniStore

EFFORTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("mean", {}),
    ("mean ef=64", {"hnsw_ef": 64}),
    ("mean ef=128", {"hnsw_ef": 128}),
    ("mean exact", {"exact": True}),
)


def measure(store: OmniStore, near: np.ndarray, truth: list[np.ndarray], options: dict[str, Any]) -> str:
    for query in near[:5]:  # warm-up
        store.search(query, limit=10, **options)
    times, overlaps = [], []
    for query, best in zip(near, truth, strict=True):
        began = time.perf_counter()
        hits = store.search(query, limit=10, **options)
        times.append(time.perf_counter() - began)
        overlaps.append(len({int(h.id) for h in hits} & set(best.tolist())) / 10)
    return f"p50 {np.median(times) * 1e3:7.2f} ms  overlap {np.mean(overlaps):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--cap", type=int, default=edge_engine.SEGMENT_POINTS, help="SEGMENT_POINTS")
    parser.add_argument("--modes", default="one-shot,api")
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    audio, video = corpus(rng, args.points, 2048, 10)
    near, _ = make_queries(rng, audio, video, args.queries)
    truth = [exact_top(audio, video, q, "mean") for q in near]
    edge_engine.SEGMENT_POINTS = args.cap
    for mode in args.modes.split(","):
        threshold = 0 if mode == "one-shot" else edge_engine.INDEX_THRESHOLD
        with (
            tempfile.TemporaryDirectory() as folder,
            OmniStore("x", path=folder, index_threshold=threshold) as store,
        ):
            began = time.perf_counter()
            for ids, vectors in store_batches(audio, video, 1000):
                store.upsert(ids, vectors)
            if mode == "one-shot":
                store.optimize()
            print(f"{mode}: {store.index_info()}, written and built in {time.perf_counter() - began:.0f} s")
            for label, options in EFFORTS:
                print(f"  {label:<12} {measure(store, near, truth, options)}", flush=True)


if __name__ == "__main__":
    main()
