"""Items/s of ``index --ray`` with 1 and 2 CPU actors next to the single-process path.

    python benchmarks/bench_ray.py [--images 16] [--clips 8] [--cpus 2]

Synthetic media (small images, 1.5-s wavs and 1.5-s mp4s with sound) and the tiny checkpoint:
the transformer is tiny but decoding and the processors are the real ones, so the figures show
the overhead of the distributed path (scheduling, pickling, actor start-up), not the speed of the
real model. Each case indexes the same files into a fresh embedded store.

* ``local``: the CLI's ``index_scan`` after loading the model (the load is its start-up);
* ``ray N``: the driver's own steps (``begin_add``, ``stream_outcomes``, ``AddRun.record``) on a
  local Ray with N actors; start-up is the time to the first written chunk (actor spawn, model
  load, Ray Data planning, one chunk), ``steady`` counts the items of the other chunks over the
  time from the first chunk to the last.

``items/s`` is items over the whole wall time, start-up included.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    """One line of the table."""

    mode: str
    items: int
    startup_s: float
    wall_s: float

    steady_items: int

    def line(self) -> str:
        steady = self.steady_items / max(self.wall_s - self.startup_s, 1e-9)
        rate = self.items / self.wall_s
        times = f"{self.startup_s:>10.1f} {self.wall_s:>8.1f}"
        return f"{self.mode:<10} {self.items:>6} {times} {rate:>8.2f} {steady:>8.2f}"


def make_media(root: Path, images: int, clips: int) -> None:
    """``images`` PNGs, ``clips`` wavs and ``clips`` mp4s with sound, all different."""
    from omni_rag.testing.media import make_audio, make_image, make_video

    for k in range(images):
        make_image(root / f"img{k:03}.png", size=(64, 48), seed=k)
    for k in range(clips):
        make_audio(root / f"tone{k:03}.wav", seconds=1.5, sample_rate=16000, freq=200.0 + 20 * k, seed=k)
        make_video(root / f"clip{k:03}.mp4", seconds=1.5, fps=4, size=(48, 32), audio=True, seed=100 + k)


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def bench_local(files: Path, checkpoint: Path, scratch: Path) -> Row:
    from omni_rag import OmniEmbedder
    from omni_rag.cli.files import scan_paths
    from omni_rag.cli.index import index_scan
    from omni_rag.retriever import OmniRetriever
    from omni_rag.store import OmniStore

    scan = scan_paths([files])
    holder: list[OmniEmbedder] = []
    load = timed(lambda: holder.append(OmniEmbedder.from_pretrained(checkpoint, device="cpu")))
    with OmniStore("bench", path=scratch / "local") as store:
        wall = timed(lambda: index_scan(OmniRetriever(holder[0], store), scan, quiet=True))
    return Row("local", len(scan.items), load, wall + load, len(scan.items))


def bench_ray(files: Path, checkpoint: Path, scratch: Path, actors: int) -> Row:
    from omni_rag.cli.files import scan_paths
    from omni_rag.distributed import ModelSpec, RayOptions
    from omni_rag.distributed.driver import stream_outcomes
    from omni_rag.indexing import begin_add
    from omni_rag.store import OmniStore

    spec = ModelSpec(str(checkpoint), device="cpu")
    options = RayOptions(actors=actors, gpus_per_actor=0)
    items = [item.content for item in scan_paths([files]).items]
    start = time.perf_counter()
    first, steady_items = 0.0, 0
    with OmniStore("bench", path=scratch / f"ray{actors}") as store:
        run = begin_add(store, items, errors="skip")
        chunks = run.chunks(options.items_per_group)
        for n, outcome in enumerate(stream_outcomes(chunks, spec, options)):
            run.record(outcome.done, outcome.failures)
            if n == 0:
                first = time.perf_counter() - start
            else:
                steady_items += len({p.item_index for p in chunks[outcome.chunk]})
        run.finish()
    return Row(f"ray {actors}", len(items), first, time.perf_counter() - start, steady_items)


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

    from omni_rag.testing import tiny_checkpoint

    checkpoint = tiny_checkpoint("native")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "files").mkdir()
        make_media(root / "files", args.images, args.clips)
        rows = [bench_local(root / "files", checkpoint, root)]
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            rows += [bench_ray(root / "files", checkpoint, root, n) for n in (1, 2)]
        finally:
            ray.shutdown()
    print(f"{'mode':<10} {'items':>6} {'startup s':>10} {'wall s':>8} {'items/s':>8} {'steady/s':>8}")
    for row in rows:
        print(row.line())


if __name__ == "__main__":
    main()
