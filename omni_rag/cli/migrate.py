"""``omni-rag migrate``: move an omni-rag 0.1 embedded store to the Qdrant Edge engine, in place.

Torch-free. The old files are kept under ``legacy-0.1/`` in the store folder until the user
deletes them; an interrupted run leaves the old collection readable and a re-run completes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from omni_rag.cli.connect import DEFAULT_STORE
from omni_rag.cli.errors import EXIT_CODE_HELP, CliError, ExitCode
from omni_rag.store import StoreError, migrate_store


def add_parser(commands: Any) -> None:
    """Register ``migrate`` on the top-level subparsers."""
    parser = commands.add_parser(
        "migrate",
        help="move an omni-rag 0.1 store folder to the Qdrant Edge engine (old files kept)",
        description="Copy every collection of an omni-rag 0.1 embedded store (qdrant-client local "
        "mode) into the Qdrant Edge layout in the same folder; the old files move to legacy-0.1/.",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", metavar="PATH", default=DEFAULT_STORE, help="store folder")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def run_migrate(args: argparse.Namespace) -> int:
    """The ``migrate`` command."""
    root = Path(args.store)
    if not root.is_dir():
        raise CliError(f"no store at {root.resolve()}", ExitCode.NO_COLLECTION)

    def progress(name: str, copied: int) -> None:
        if not args.quiet:
            print(f"  {name}: {copied} points copied", file=sys.stderr, flush=True)

    try:
        report = migrate_store(root, progress=progress)
    except StoreError as error:
        raise CliError(f"migration stopped: {error}; re-run to finish it", ExitCode.STORE_INVALID) from error
    if not report.copied and report.backup is None:
        print(f"nothing to migrate in {root.resolve()}: it is already a 0.2 store")
        return int(ExitCode.OK)
    for name, count in report.copied.items():
        print(f"migrated collection {name!r}: {count} points")
    print(f"the 0.1 files are kept in {report.backup}; delete that folder once you are satisfied")
    return int(ExitCode.OK)
