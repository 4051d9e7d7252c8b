"""``omni-rag``: index files and folders into Qdrant, search them with any modality, inspect.

Only argument parsing lives here; each command is its own module, imported when it runs so
``omni-rag --help`` and ``omni-rag info`` never pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omni_rag.cli.errors import EXIT_CODE_HELP, CliError, ExitCode
from omni_rag.cli.options import model_options, ray_options, store_options
from omni_rag.store import FUSION_MODES

#: The helpers a program driving omni-rag like the CLI needs (``examples/demo.py`` uses them),
#: imported on first use so ``omni-rag --help`` never pays for torch.
_PUBLIC = {
    "open_store": "omni_rag.cli.connect",
    "scan_paths": "omni_rag.cli.files",
    "index_scan": "omni_rag.cli.index",
    "load_embedder": "omni_rag.cli.model",
    "display_path": "omni_rag.cli.render",
    "hit_source": "omni_rag.cli.render",
    "render_hits": "omni_rag.cli.render",
    "render_index_report": "omni_rag.cli.render",
    "search_hits": "omni_rag.cli.search",  # ``search`` would be shadowed by the submodule
}

__all__ = [
    "CliError",
    "ExitCode",
    "build_parser",
    "display_path",
    "hit_source",
    "index_scan",
    "load_embedder",
    "main",
    "open_store",
    "quiet_libraries",
    "render_hits",
    "render_index_report",
    "scan_paths",
    "search_hits",
]

if TYPE_CHECKING:
    from omni_rag.cli.connect import open_store
    from omni_rag.cli.files import scan_paths
    from omni_rag.cli.index import index_scan
    from omni_rag.cli.model import load_embedder
    from omni_rag.cli.render import display_path, hit_source, render_hits, render_index_report
    from omni_rag.cli.search import search as search_hits


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), "search" if name == "search_hits" else name)
    raise AttributeError(f"module 'omni_rag.cli' has no attribute {name!r}")


#: Module and function that run each command.
_COMMANDS = {
    "index": ("omni_rag.cli.index", "run_index"),
    "search": ("omni_rag.cli.search", "run_search"),
    "info": ("omni_rag.cli.info", "run_info"),
    "eval": ("omni_rag.cli.eval", "run_eval"),
    "migrate": ("omni_rag.cli.migrate", "run_migrate"),
    "verify": ("omni_rag.cli.verify", "run_verify"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full command line, with the exit codes at the end of ``--help``."""
    parser = argparse.ArgumentParser(
        prog="omni-rag",
        description="Omni-Embed-Nemotron-3B retrieval over text, images, audio and video, stored in Qdrant.",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="embed files and folders (modality detected from content)",
        description="Embed files and folders into a collection. Files already indexed with the same "
        "content are skipped; files that fail are listed at the end (exit code 1).",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files and folders (walked recursively)")
    store_options(index)
    model_options(index)
    index.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files and folders: a name glob (node_modules, *.tmp) matched at any depth, or a "
        "path glob with / (sub/a.txt, docs/drafts) relative to the folder or as given; repeatable",
    )
    index.add_argument(
        "--follow-external-links",
        action="store_true",
        help="also index files reached through links whose target lies outside the given paths",
    )
    index.add_argument(
        "--max-text-mb",
        type=float,
        default=4.0,
        metavar="MB",
        help="text files larger than this are skipped and listed (default: 4)",
    )
    index.add_argument(
        "--keep-missing",
        action="store_true",
        help="keep the points of files that vanished from the given folders (default: remove them)",
    )
    index.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ray_options(index)

    search = commands.add_parser(
        "search",
        help="search with text, an image, audio, a video, or a mix",
        description="Search a collection. Media flags combine with each other and with text.",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("query", nargs="?", metavar="QUERY", help="query text")
    search.add_argument("--text", "-t", help="query text (alternative to QUERY)")
    search.add_argument("--image", metavar="FILE", help="query image")
    search.add_argument("--audio", metavar="FILE", help="query audio (any container with an audio track)")
    search.add_argument(
        "--video", metavar="FILE", help="query video (frames; add --audio FILE for its sound)"
    )
    store_options(search)
    model_options(search)
    search.add_argument(
        "--streams", metavar="LIST", help="comma list of text,image,audio,video (default: all)"
    )
    search.add_argument("--fusion", choices=FUSION_MODES, default="mean", help="how stream scores combine")
    search.add_argument("-k", type=int, default=10, help="number of results")
    search.add_argument("--json", action="store_true", help="print a JSON list instead of a table")

    info = commands.add_parser(
        "info",
        help="points, streams, dimension and model of a collection",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    store_options(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    importlib.import_module("omni_rag.cli.eval").add_parser(commands)
    importlib.import_module("omni_rag.cli.verify").add_parser(commands)
    importlib.import_module("omni_rag.cli.migrate").add_parser(commands)
    return parser


def quiet_libraries() -> None:
    """Keep library deprecation chatter off a user's terminal; omni-rag's own warnings still show.

    ``TRANSFORMERS_VERBOSITY`` is only defaulted, so ``TRANSFORMERS_VERBOSITY=warning`` brings
    transformers' messages back when debugging.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.WARNING, format="omni-rag: warning: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``omni-rag``; returns the exit code (see :class:`ExitCode`)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "k", 1) < 1 or getattr(args, "batch_size", 1) < 1:
        print("omni-rag: error: -k and --batch-size must be >= 1", file=sys.stderr)
        return ExitCode.USAGE
    if not 0 < getattr(args, "max_text_mb", 1.0) < 2**20:
        print("omni-rag: error: --max-text-mb must be > 0 (and under a terabyte)", file=sys.stderr)
        return ExitCode.USAGE
    quiet_libraries()
    module, function = _COMMANDS[args.command]
    try:
        code: int = getattr(importlib.import_module(module), function)(args)
    except CliError as error:
        print(f"omni-rag: error: {error.message}", file=sys.stderr)
        return int(error.code)
    except KeyboardInterrupt:
        print("omni-rag: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
