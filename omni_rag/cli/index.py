"""``omni-rag index``: embed files and folders into a collection, reporting every file's fate.

One bad file never stops a run: it is listed at the end with its reason and the exit code
becomes 1. Files already in the collection are recognised by their content-hash id and not
embedded again, so re-running an index over a growing folder only pays for what is new.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tqdm import tqdm

from omni_rag.cli.connect import open_store
from omni_rag.cli.errors import CliError, ExitCode
from omni_rag.cli.files import FileScan, ScanOptions, scan_paths
from omni_rag.cli.model import embedder_from_args
from omni_rag.cli.render import render_index_report
from omni_rag.cli.report import IndexReport
from omni_rag.folders import index_folder
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
    keep_missing: bool = False,
) -> IndexReport:
    """Add the scanned files ``chunk`` at a time, with a progress bar on stderr, then sync the
    collection to the scanned folders (:func:`omni_rag.folders.sync_folder`).

    ``policy`` cuts long recordings into segments (``None``: never cut), as in ``OmniRetriever.add``.

    Raises:
        ModelMismatchError: The collection holds another model's vectors (checked before any work).
        StoreError: A write failed.
    """
    report = IndexReport.from_scan(scan)
    bar = tqdm(
        total=len(scan.items),
        unit="file",
        desc="indexing",
        file=sys.stderr,
        disable=quiet or None,
        leave=False,
    )

    def progress(files: int) -> None:
        bar.update(files)
        bar.set_postfix(added=len(report.added), unchanged=len(report.unchanged), failed=len(report.failures))

    with bar:
        index_folder(
            retriever,
            scan,
            chunk=chunk,
            policy=policy,
            keep_missing=keep_missing,
            progress=progress,
            report=report,
        )
    return report


def build_index(store: OmniStore, *, quiet: bool) -> None:
    """Build the search index before the command returns, so the first search is fast."""
    if not quiet:
        print("building the search index (HNSW)...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    store.optimize(show_progress_bar=not quiet and sys.stderr.isatty())
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
    store = open_store(args.collection, path=args.store, url=args.url, api_key=args.api_key, write=True)
    # the builds the store runs as points pass its index_threshold show a bar too
    store.show_progress_bar = not args.quiet and sys.stderr.isatty()
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
        return lambda scan: index_scan(
            retriever, scan, chunk=max(args.batch_size, 1), quiet=args.quiet, keep_missing=args.keep_missing
        )
    from omni_rag.cli.index_ray import index_scan_ray, model_spec_from_args

    spec = model_spec_from_args(args)
    return lambda scan: index_scan_ray(
        store, scan, spec, ray_options, quiet=args.quiet, keep_missing=args.keep_missing
    )


def _index_into(store: OmniStore, args: argparse.Namespace, ray_options: RayOptions | None) -> IndexReport:
    """Scan and index, here or on Ray; a model mismatch or a failed write stops the run."""
    index = _indexer(store, args, ray_options)
    options = ScanOptions(
        exclude=args.exclude,
        follow_external_links=args.follow_external_links,
        max_text_bytes=int(args.max_text_mb * 2**20),
    )
    scan = scan_paths(args.paths, options=options)
    for warning in scan.warnings:
        print(f"omni-rag: warning: {warning}", file=sys.stderr)
    try:
        return index(scan)
    except ModelMismatchError as error:
        raise CliError(str(error), ExitCode.MODEL_MISMATCH) from error
    except StoreError as error:  # a failed write stops the run: embedding on would be lost work
        raise CliError(
            f"stopped: {error}. Points written before the failure are kept; re-run to resume.",
            ExitCode.STORE_INVALID,
        ) from error
