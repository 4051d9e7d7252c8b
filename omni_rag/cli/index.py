"""``omni-rag index``: embed files and folders into a collection, reporting every file's fate.

One bad file never stops a run: it is listed at the end with its reason and the exit code
becomes 1. Files already in the collection are recognised by their content-hash id and not
embedded again, so re-running an index over a growing folder only pays for what is new.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tqdm import tqdm

from omni_rag.cli.connect import open_store
from omni_rag.cli.errors import CliError, ExitCode
from omni_rag.cli.files import FileItem, FileScan, scan_paths
from omni_rag.cli.model import embedder_from_args
from omni_rag.cli.render import render_index_report
from omni_rag.cli.report import IndexReport
from omni_rag.indexing import crash_reason
from omni_rag.retriever import ModelMismatchError, OmniRetriever
from omni_rag.segments import DEFAULT_POLICY, SegmentPolicy
from omni_rag.store import OmniStore, StoreError

if TYPE_CHECKING:
    from omni_rag.distributed import RayOptions


def index_scan(
    retriever: OmniRetriever,
    scan: FileScan,
    *,
    chunk: int = 8,
    quiet: bool = False,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
) -> IndexReport:
    """Add the scanned files ``chunk`` at a time, with a progress bar on stderr.

    ``policy`` cuts long recordings into segments (``None``: never cut), as in ``OmniRetriever.add``.

    Raises:
        ModelMismatchError: The collection holds another model's vectors (checked before any work).
    """
    report = IndexReport.from_scan(scan)
    start = time.perf_counter()
    retriever.check_model()
    bar = tqdm(
        total=len(scan.items),
        unit="file",
        desc="indexing",
        file=sys.stderr,
        disable=quiet or None,
        leave=False,
    )
    with bar:
        for offset in range(0, len(scan.items), chunk):
            batch: list[FileItem] = scan.items[offset : offset + chunk]
            _add_batch(retriever, batch, report, policy)
            bar.update(len(batch))
            bar.set_postfix(
                added=len(report.added), unchanged=len(report.unchanged), failed=len(report.failures)
            )
    report.seconds = time.perf_counter() - start
    return report


def _add_batch(
    retriever: OmniRetriever, batch: Sequence[FileItem], report: IndexReport, policy: SegmentPolicy | None
) -> None:
    """Add one chunk; an unexpected error fails that chunk's files, never the run."""
    try:
        result = retriever.add([item.content for item in batch], errors="skip", segment=policy)
    except (ModelMismatchError, StoreError):
        raise
    except Exception as error:  # a decoder or model crash on one chunk must not lose the others
        report.record_crash(batch, crash_reason(error))
        return
    report.record(batch, result)


def build_index(store: OmniStore, *, quiet: bool) -> None:
    """Build the search index before the command returns, so the first search is fast."""
    if not quiet:
        print("building the search index (HNSW)...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    store.optimize()
    if not quiet:
        print(f"search index ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def run_index(args: argparse.Namespace) -> int:
    """The ``index`` command: open the store and the model (each fails fast), scan, add, report.

    With ``--ray`` the model loads on the actors, not here; a missing ray fails before anything.
    """
    ray_options = None
    if args.ray is not None:
        from omni_rag.cli.index_ray import ray_options_from_args

        ray_options = ray_options_from_args(args)
    store = open_store(args.collection, path=args.store, url=args.url, api_key=args.api_key)
    try:
        report = _index_into(store, args, ray_options)
        build_index(store, quiet=args.quiet)
        total = store.count()
    finally:
        store.close()
    print(render_index_report(report, collection=args.collection, total=total))
    return int(report.exit_code)


def _indexer(
    store: OmniStore, args: argparse.Namespace, ray_options: RayOptions | None
) -> Callable[[FileScan], IndexReport]:
    """What indexes the scan: a model loaded here now (a bad one fails before the scan), or Ray."""
    if ray_options is None:
        embedder = embedder_from_args(args)
        # the model's own bar (items within a chunk of files) under the files bar; off with -q or no terminal
        embedder.show_progress_bar = not args.quiet and sys.stderr.isatty()
        retriever = OmniRetriever(embedder, store)
        return lambda scan: index_scan(retriever, scan, chunk=max(args.batch_size, 1), quiet=args.quiet)
    from omni_rag.cli.index_ray import index_scan_ray, model_spec_from_args

    spec = model_spec_from_args(args)
    return lambda scan: index_scan_ray(store, scan, spec, ray_options, quiet=args.quiet)


def _index_into(store: OmniStore, args: argparse.Namespace, ray_options: RayOptions | None) -> IndexReport:
    """Scan and index, here or on Ray; a model mismatch or a failed write stops the run."""
    index = _indexer(store, args, ray_options)
    scan = scan_paths(args.paths, exclude=args.exclude)
    try:
        return index(scan)
    except ModelMismatchError as error:
        raise CliError(str(error), ExitCode.MODEL_MISMATCH) from error
    except StoreError as error:  # a failed write stops the run: embedding on would be lost work
        raise CliError(
            f"stopped: {error}. Points written before the failure are kept; re-run to resume.",
            ExitCode.STORE_INVALID,
        ) from error
