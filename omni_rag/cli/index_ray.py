"""``omni-rag index --ray``: the same scan and report as a local run, embedding on a Ray actor pool.

Only the embedding moves: files are walked, probed and reported here exactly as without ``--ray``
(:mod:`.files`, :class:`.report.IndexReport`), and :mod:`omni_rag.distributed` plans and writes with
the code a local add uses.
"""

from __future__ import annotations

import argparse
import time

from omni_rag.cli.errors import CliError, ExitCode
from omni_rag.cli.files import FileScan
from omni_rag.cli.model import locate_model
from omni_rag.cli.report import IndexReport
from omni_rag.distributed import ModelSpec, RayMissingError, RayOptions, require_ray
from omni_rag.folders import read_batch, sync_folder
from omni_rag.segments import DEFAULT_POLICY, SegmentPolicy
from omni_rag.store import OmniStore


def ray_options_from_args(args: argparse.Namespace) -> RayOptions:
    """``--ray*`` options, checked before the store is opened.

    Raises:
        CliError: ``USAGE`` when ray is not installed (with the install command) or a value is invalid.
    """
    try:
        require_ray()
        return RayOptions(
            address=args.ray or None,
            actors=args.ray_actors,
            gpus_per_actor=args.ray_gpus_per_actor,
            cpus_per_actor=args.ray_cpus_per_actor,
            items_per_group=max(args.batch_size, 1),
        )
    except RayMissingError as error:
        raise CliError(str(error), ExitCode.USAGE) from error
    except ValueError as error:
        raise CliError(f"--ray options: {error}", ExitCode.USAGE) from error


def model_spec_from_args(args: argparse.Namespace) -> ModelSpec:
    """The model every actor loads; resolved here so a missing model fails before Ray starts."""
    return ModelSpec(
        name=locate_model(args.model),
        device=args.device,
        batch_size=args.batch_size,
        trust_remote_code=args.trust_remote_code,
    )


def index_scan_ray(
    store: OmniStore,
    scan: FileScan,
    spec: ModelSpec,
    options: RayOptions,
    *,
    quiet: bool = False,
    policy: SegmentPolicy | None = DEFAULT_POLICY,
    keep_missing: bool = False,
) -> IndexReport:
    """What :func:`omni_rag.cli.index.index_scan` does (add, then sync), with the embedding on Ray.

    Raises:
        ModelMismatchError: The collection holds another model's vectors (checked before the
            first write).
        StoreError: A write failed.
    """
    from omni_rag.distributed.driver import index_items

    report = IndexReport.from_scan(scan)
    start = time.perf_counter()
    items, contents = read_batch(scan.items, report, scan.max_text_bytes)
    result = index_items(store, contents, spec, options, policy=policy, quiet=quiet)
    report.record(items, result)
    sync_folder(store, scan, report, keep_missing=keep_missing)
    report.seconds = time.perf_counter() - start
    return report
