"""The driver: plan on this machine, embed on the actor pool, write here.

One process writes because the embedded Qdrant store takes a process lock (one writer), and
because the run's summary (stale segments, per-file outcome) needs every written point anyway;
vectors are small next to the media they come from (a 2,048-float vector per stream).
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from omni_rag.content import ItemLike
from omni_rag.distributed.options import ModelSpec, RayOptions, require_ray
from omni_rag.distributed.worker import CRASH_AFTER_ENV, ChunkEmbedder, ChunkOutcome, CrashHook
from omni_rag.indexing import AddResult, AddRun, PlannedPoint, begin_add, claim_collection, crash_reason
from omni_rag.retriever import ModelMismatchError, check_model_info
from omni_rag.segments import DEFAULT_POLICY, SegmentPolicy
from omni_rag.store import OmniStore, StoreError


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (or start a local Ray), unless this process already has."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=True)


def _crash_hook() -> CrashHook | None:
    after = os.environ.get(CRASH_AFTER_ENV)
    if not after:
        return None
    marker = os.path.join(tempfile.mkdtemp(prefix="omni-rag-crash-"), "fired")
    return CrashHook(int(after), marker)


def stream_outcomes(
    chunks: Sequence[list[PlannedPoint]], spec: ModelSpec, options: RayOptions
) -> Iterator[ChunkOutcome]:
    """Embed ``chunks`` on an actor pool; outcomes arrive as actors finish them, in any order.

    Each chunk is its own block, so a chunk whose actor died more than ``task_retries`` times is
    the only one lost (``max_errored_blocks=-1`` keeps the run going; the caller reports it).
    """
    ray = require_ray()
    actors, gpus = options.pool(ray.cluster_resources())
    rows = [{"chunk": i, "task": pickle.dumps(chunk)} for i, chunk in enumerate(chunks)]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    dataset.context.max_errored_blocks = -1
    dataset.context.enable_progress_bars = False  # the driver shows files and segments instead
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for actor restarts/retries yet; bounded retries matter
        # (the default is to retry forever, so a file that kills its actor every time would hang).
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        embedded = dataset.map_batches(
            ChunkEmbedder,
            fn_constructor_kwargs={"spec": spec, "crash": _crash_hook()},
            batch_size=1,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus,
            num_cpus=options.cpus_per_actor,
            max_restarts=-1,
            max_task_retries=options.task_retries,
        )
    for row in embedded.iter_rows():
        yield pickle.loads(row["outcome"])


@dataclass
class _Progress:
    """The bar: segments written, with the files they belong to and the files failed so far."""

    bar: tqdm
    files: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)

    def update(self, points: Sequence[PlannedPoint], outcome: ChunkOutcome) -> None:
        self.files.update(p.item_index for p in points)
        self.failed.update(f.index for f in outcome.failures)
        if outcome.crash is not None:
            self.failed.update(p.item_index for p in points)
        self.bar.update(len(points))
        self.bar.set_postfix(files=len(self.files), failed=len(self.failed))


def _collect(
    run: AddRun,
    chunks: Sequence[list[PlannedPoint]],
    outcomes: Iterator[ChunkOutcome],
    progress: _Progress,
    seen: set[int],
) -> None:
    """Write each outcome once (a retried chunk may come back twice); ``seen`` gets the chunks done."""
    for outcome in outcomes:
        if outcome.chunk in seen:
            continue
        if not seen:  # the first vectors tell the model: check it before anything is written
            check_model_info(run.store, outcome.model)
            claim_collection(run.store, outcome.model)
        seen.add(outcome.chunk)
        points = chunks[outcome.chunk]
        if outcome.crash is not None:
            run.record_crash(points, outcome.crash)
        else:
            run.record(outcome.done, outcome.failures)
        progress.update(points, outcome)


def index_items(
    store: OmniStore,
    items: Sequence[ItemLike],
    spec: ModelSpec,
    options: RayOptions,
    *,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    quiet: bool = False,
) -> AddResult:
    """Add ``items`` like ``OmniRetriever.add(items, errors="skip", segment=policy)``, embedding on Ray.

    Items are listed, hashed and planned here (same ids and segments as a local add), items already
    stored are skipped, and the rest is embedded on the actor pool and written here.

    Returns:
        Per-item outcome; items of a chunk no actor could finish are in ``crashed`` with the reason.

    Raises:
        ModelMismatchError: The actors' model is not the one that filled the collection (checked
            before the first write; the driver loads no model, so a run with nothing to embed
            checks nothing and writes nothing).
        StoreError: A write failed: the run stops, what was written is kept.
    """
    run = begin_add(store, items, policy=policy, errors="skip")
    chunks = run.chunks(options.items_per_group)
    if chunks:
        connect(options.address)
    return write_outcomes(run, chunks, stream_outcomes(chunks, spec, options), quiet=quiet)


def write_outcomes(
    run: AddRun,
    chunks: Sequence[list[PlannedPoint]],
    outcomes: Iterator[ChunkOutcome],
    *,
    quiet: bool = False,
) -> AddResult:
    """Write outcomes as they arrive, each chunk once; a chunk that never arrives (the pipeline
    failed, or its actor died more than ``task_retries`` times) fails its files with the reason.

    Raises:
        ModelMismatchError: see :func:`index_items`.
        StoreError: A write failed.
    """
    seen: set[int] = set()
    lost = "no worker returned it"
    if chunks:
        bar = tqdm(
            total=len(run.pending),
            unit="segment",
            desc="indexing (ray)",
            file=sys.stderr,
            disable=quiet or None,
        )
        with bar:
            try:
                _collect(run, chunks, outcomes, _Progress(bar), seen)
            except (ModelMismatchError, StoreError):
                raise
            except Exception as error:  # the pipeline itself failed (e.g. no actor could load the model)
                lost = crash_reason(error)
    for index, chunk in enumerate(chunks):
        if index not in seen:
            run.record_crash(chunk, f"not embedded: {lost}")
    return run.finish()
