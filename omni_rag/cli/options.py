"""Options shared by several commands, defined once so ``index``, ``search`` and ``eval`` agree."""

from __future__ import annotations

import argparse


def store_options(parser: argparse.ArgumentParser) -> None:
    """``--collection``, and where the store is: ``--store`` folder or ``--url`` server."""
    parser.add_argument("--collection", "-c", required=True, help="Qdrant collection name")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="PATH", help="embedded Qdrant folder (default: ./.omni-rag)")
    where.add_argument("--url", help="Qdrant server URL instead of an embedded folder")
    parser.add_argument("--api-key", help="Qdrant server API key")


def model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--batch-size``, ``--trust-remote-code``: what loads the embedder."""
    parser.add_argument(
        "--model",
        "-m",
        metavar="NAME_OR_PATH",
        help="hub id or local folder (default: $OMNI_RAG_MODEL, else nvidia/omni-embed-nemotron-3b)",
    )
    parser.add_argument("--device", help="torch device, e.g. cuda, cuda:1, cpu (default: CUDA if available)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="items per forward pass")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="allow a checkpoint that ships its own modelling code (official ids are trusted pinned)",
    )
