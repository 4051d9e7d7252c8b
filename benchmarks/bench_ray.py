"""Items/s of ``index --ray`` with 1 and 2 CPU actors next to the single-process path.

    python benchmarks/bench_ray.py [--images 48] [--clips 12] [--cpus 2]

Synthetic media (small images, 1.5-s wavs and 1.5-s mp4s with sound) and the tiny checkpoint:
the transformer is tiny but decoding and the processors are the real ones, so the figures show
the overhead of the distributed path (scheduling, pickling, actor start-up), not the speed of the
real model. Every case runs the steps ``index`` runs (``begin_add`` plans and hashes, chunks of 8
files, ``AddRun.record`` writes, ``finish``) into a fresh embedded store; only where chunks are
embedded differs: ``local`` calls ``embed_chunk`` in this process (``OmniRetriever.add``'s loop),
``ray N`` streams them through ``stream_outcomes`` on a local Ray with N actors.

Columns: ``plan s`` (hash + probe on the driver, the same work in every case), ``first s`` (from
the end of planning to the first chunk written: model load, and for Ray actor spawn and Ray Data
start-up), ``wall s`` (everything, model load included), ``items/s`` (items / wall) and
``steady/s`` (the items of all chunks after the first, over the time from the first to the last).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Chunks = Sequence[list[Any]]
#: Embeds chunks, yielding ``(chunk index, done, failures)`` as they finish.
Embed = Callable[[Chunks], Iterator[tuple[int, list[Any], list[Any]]]]


@dataclass
class Row:
    """One line of the table."""

    mode: str
    items: int
    plan_s: float
    first_s: float
    wall_s: float
    steady_items: int
    steady_s: float

    def line(self) -> str:
        times = f"{self.plan_s:>7.1f} {self.first_s:>8.1f} {self.wall_s:>7.1f}"
        steady = self.steady_items / max(self.steady_s, 1e-9)
        return f"{self.mode:<7} {self.items:>6} {times} {self.items / self.wall_s:>8.2f} {steady:>9.2f}"


def make_media(root: Path, images: int, clips: int) -> None:
    """``images`` PNGs, ``clips`` wavs and ``clips`` mp4s with sound, all different."""
    from omni_rag.testing.media import make_audio, make_image, make_video

    root.mkdir(parents=True, exist_ok=True)
    for k in range(images):
        make_image(root / f"img{k:03}.png", size=(64, 48), seed=k)
    for k in range(clips):
        make_audio(root / f"tone{k:03}.wav", seconds=1.5, sample_rate=16000, freq=200.0 + 20 * k, seed=k)
        make_video(root / f"clip{k:03}.mp4", seconds=1.5, fps=4, size=(48, 32), audio=True, seed=100 + k)


def measure(mode: str, items: list[Any], store_path: Path, embed: Embed) -> Row:
    """Plan, embed with ``embed``, write and finish, timing each phase."""
    from omni_rag.indexing import begin_add
    from omni_rag.store import OmniStore

    with OmniStore("bench", path=store_path) as store:
        start = time.perf_counter()
        run = begin_add(store, items, errors="skip")
        chunks = run.chunks(8)
        planned = time.perf_counter()
        first, steady_items = 0.0, 0
        for n, (index, done, failures) in enumerate(embed(chunks)):
            run.record(done, failures)
            if n == 0:
                first = time.perf_counter()
            else:
                steady_items += len({p.item_index for p in chunks[index]})
        run.finish()
        end = time.perf_counter()
    return Row(mode, len(items), planned - start, first - planned, end - start, steady_items, end - first)


def local_embed(checkpoint: Path) -> Embed:
    """Load the model when the first chunk is asked for (so its load counts as ``first s``)."""

    def embed(chunks: Chunks) -> Iterator[tuple[int, list[Any], list[Any]]]:
        from omni_rag import OmniEmbedder
        from omni_rag.indexing import embed_chunk

        embedder = OmniEmbedder.from_pretrained(checkpoint, device="cpu")
        for index, chunk in enumerate(chunks):
            yield (index, *embed_chunk(embedder, chunk, errors="skip"))

    return embed


def ray_embed(checkpoint: Path, actors: int) -> Embed:
    def embed(chunks: Chunks) -> Iterator[tuple[int, list[Any], list[Any]]]:
        from omni_rag.distributed import ModelSpec, RayOptions
        from omni_rag.distributed.driver import stream_outcomes

        options = RayOptions(actors=actors, gpus_per_actor=0)
        for outcome in stream_outcomes(chunks, ModelSpec(str(checkpoint), device="cpu"), options):
            yield outcome.chunk, outcome.done, outcome.failures

    return embed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--clips", type=int, default=12, help="wavs, and as many mp4s")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import ray

    from omni_rag.cli.files import scan_paths
    from omni_rag.testing import tiny_checkpoint

    checkpoint = tiny_checkpoint("native")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_media(root / "files", args.images, args.clips)
        items = [item.content for item in scan_paths([root / "files"]).items]
        rows = [measure("local", items, root / "local", local_embed(checkpoint))]
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            for n in (1, 2):
                rows.append(measure(f"ray {n}", items, root / f"ray{n}", ray_embed(checkpoint, n)))
        finally:
            ray.shutdown()
    print(f"{'mode':<7} {'items':>6} {'plan s':>7} {'first s':>8} {'wall s':>7}", end=" ")
    print(f"{'items/s':>8} {'steady/s':>9}")
    for row in rows:
        print(row.line())


if __name__ == "__main__":
    main()
