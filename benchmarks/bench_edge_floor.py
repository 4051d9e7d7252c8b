"""Upsert floor of Qdrant Edge itself for omni-rag's collection layout, with no omni-rag code.

Run: ``python benchmarks/bench_edge_floor.py --points 100000`` (a few minutes). It writes the
clustered audio+video vectors of ``bench_store.py`` straight into an ``EdgeShard`` configured as
the store configures it (``shard_config``), in batches of 512, once with the 4,096-d
``fused_audio_video`` vector and once without it, and splits the time between building the
binding's inputs (it takes vectors as Python lists of floats) and Edge's update (segment writes
and the write-ahead log). It answers one question: is a store upsert rate the store's own
overhead, or the engine's?
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from dataclasses import dataclass

import numpy as np
import qdrant_edge as qe
from bench_store import corpus

from omni_rag.store.edge_engine import shard_config
from omni_rag.store.engine import FUSED, collection_vectors


@dataclass
class Floor:
    """One layout's upsert rate and where its time went."""

    fused: bool
    points_s: float
    inputs_us: float
    update_us: float


def _point(i: int, audio: np.ndarray, video: np.ndarray, fused: bool) -> qe.Point:
    vectors = {"audio": audio.tolist(), "video": video.tolist()}
    if fused:
        vectors[FUSED] = np.concatenate([audio, video]).tolist()
    point_id = str(uuid.uuid5(uuid.NAMESPACE_OID, str(i)))
    return qe.Point(point_id, vectors, {"id": str(i), "modalities": ["audio", "video"]})


def floor(audio: np.ndarray, video: np.ndarray, fused: bool, batch: int, tmp: str | None) -> Floor:
    inputs = update = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-edge-", dir=tmp) as folder:
        specs = [s for s in collection_vectors(audio.shape[1]) if fused or s.name != FUSED]
        shard = qe.EdgeShard.create(f"{folder}/shard", shard_config(specs))
        start = time.perf_counter()
        for lo in range(0, len(audio), batch):
            t0 = time.perf_counter()
            points = [_point(i, audio[i], video[i], fused) for i in range(lo, min(lo + batch, len(audio)))]
            t1 = time.perf_counter()
            shard.update(qe.UpdateOperation.upsert_points(points))
            inputs, update = inputs + t1 - t0, update + time.perf_counter() - t1
        total = time.perf_counter() - start
        shard.close()
    n = len(audio)
    return Floor(fused, n / total, inputs / n * 1e6, update / n * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--tmp", default=None, help="folder for the shards (default: system temp)")
    args = parser.parse_args()
    audio, video = corpus(np.random.default_rng(args.points), args.points, args.dim, 10)
    print(f"{'layout':<26} {'points/s':>9} {'inputs us/pt':>13} {'update us/pt':>13}")
    for fused in (True, False):
        f = floor(audio, video, fused, args.batch, args.tmp)
        label = "audio+video+fused (store)" if fused else "audio+video only"
        print(f"{label:<26} {f.points_s:9.0f} {f.inputs_us:13.0f} {f.update_us:13.0f}", flush=True)


if __name__ == "__main__":
    main()
