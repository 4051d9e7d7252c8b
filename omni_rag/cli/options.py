"""Options shared by several commands, defined once so ``index``, ``search`` and ``eval`` agree."""

from __future__ import annotations

import argparse


def store_options(parser: argparse.ArgumentParser, *, key_flag: str = "--api-key") -> None:
    """``--collection``, and where the store is: ``--store`` folder or ``--url`` server.

    ``key_flag`` names the Qdrant server's key option; ``serve`` keeps ``--api-key`` for its own
    key. Either way the value lands in ``args.api_key`` or ``args.qdrant_api_key``.
    """
    parser.add_argument("--collection", "-c", required=True, help="Qdrant collection name")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="PATH", help="embedded Qdrant folder (default: ./.omni-rag)")
    where.add_argument("--url", help="Qdrant server URL instead of an embedded folder")
    parser.add_argument(key_flag, help="Qdrant server API key")


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


def ray_options(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and the actor pool: embedding on a Ray cluster (``omni-rag[ray]``)."""
    group = parser.add_argument_group("distributed indexing (needs `pip install 'omni-rag[ray]'`)")
    group.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="embed on a Ray actor pool: a cluster address (auto, ray://HOST:10001), or none for a "
        "local Ray; files are planned and written here, so the store is the same as without --ray",
    )
    group.add_argument(
        "--ray-actors",
        type=int,
        metavar="N",
        help="model copies (default: one per --ray-gpus-per-actor GPUs in the cluster, or 1 without GPUs)",
    )
    group.add_argument(
        "--ray-gpus-per-actor",
        type=float,
        metavar="F",
        help="GPUs per actor, fractions share one (default: 1 when the cluster has GPUs, else 0)",
    )
    group.add_argument(
        "--ray-cpus-per-actor", type=float, default=1.0, metavar="F", help="CPUs per actor (default: 1)"
    )
