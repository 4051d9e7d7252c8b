"""``make demo``: index ``examples/media/`` and show what omni-rag retrieves for a few queries.

Everything here goes through the functions the ``omni-rag`` CLI itself calls (opening the
store, loading the model, scanning files, indexing, searching, rendering), so the demo shows
exactly what ``omni-rag index`` and ``omni-rag search`` would.

    python examples/demo.py [--model NAME_OR_PATH] [--store PATH] [--device cuda]

The model defaults to ``$OMNI_RAG_MODEL``, else nvidia/omni-embed-nemotron-3b. With a tiny
test checkpoint (random weights) it still runs end to end; the rankings are then meaningless.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omni_rag import Content
from omni_rag.cli import (
    CliError,
    display_path,
    hit_source,
    index_scan,
    load_embedder,
    open_store,
    quiet_libraries,
    render_hits,
    render_index_report,
    scan_paths,
    search_hits,
)
from omni_rag.retriever import ModelMismatchError, OmniRetriever
from omni_rag.store import OmniStore

HERE = Path(__file__).resolve().parent
MEDIA = HERE / "media"
QUERIES = HERE / "queries"
#: Not part of the corpus (the README even contains every query text), wherever the lead keeps them.
EXCLUDE = ("README.md", "*.py")
COLLECTION = "demo"
#: The real model has 2048 dims; anything this small is a test checkpoint with random weights.
TINY_DIM = 256
SHOWN = 3


@dataclass(frozen=True)
class DemoQuery:
    """One demo query: what is asked, over which streams, and which file should win."""

    title: str
    query: Content
    expect: str
    streams: tuple[str, ...] | None = None


def expected_top(text: str | None = None, query_file: str | None = None) -> str:
    """The expected winner of a query, from ``examples/queries/queries.json`` (one source of truth)."""
    spec = json.loads((QUERIES / "queries.json").read_text())
    for entry in spec["text"] + spec["audio"]:
        if (text is not None and entry.get("query") == text) or (
            query_file is not None and entry.get("query_file") == query_file
        ):
            return str(entry["expect"])
    raise KeyError(f"no query {text or query_file!r} in queries.json")


def demo_queries() -> list[DemoQuery]:
    """Text -> video, audio -> video, text -> image, then one voiced-video query per stream choice."""
    bake = "how to bake a loaf of bread"
    spoken_only = "sourdough starter left to rise overnight until golden brown"
    hotel = "hotel reimbursement limit per night for business trips"
    question = QUERIES / "bread_question.wav"
    queries = [
        DemoQuery(f"text -> video: {bake!r}", Content(text=bake), expected_top(bake)),
        DemoQuery(
            f"audio -> video: spoken {display_path(str(question))}",
            Content(audio=str(question)),
            expected_top(query_file=question.name),
        ),
        DemoQuery(f"text -> image: {hotel!r}", Content(text=hotel), expected_top(hotel)),
    ]
    for label, streams in (
        ("video only", ("video",)),
        ("audio only", ("audio",)),
        ("fused", ("audio", "video")),
    ):
        queries.append(
            DemoQuery(
                f"{label:<10} ({'+'.join(streams)}): {spoken_only!r}",
                Content(text=spoken_only),
                expected_top(spoken_only),
                streams,
            )
        )
    return queries


def index_corpus(retriever: OmniRetriever, store_path: str) -> OmniRetriever:
    """Index ``examples/media``; a demo collection left by another model is rebuilt, not refused."""
    scan = scan_paths([MEDIA], exclude=EXCLUDE)
    try:
        report = index_scan(retriever, scan)
    except ModelMismatchError:
        print(f"the {COLLECTION!r} collection was built with another model: rebuilding it")
        retriever.store.drop()
        retriever.store.close()
        retriever = OmniRetriever(retriever.embedder, open_store(COLLECTION, path=store_path))
        report = index_scan(retriever, scan)
    print(render_index_report(report, collection=COLLECTION, total=retriever.store.count()))
    return retriever


def rank_of(expect: str, sources: Sequence[str]) -> str:
    """``rank 2`` / ``not in the top 10``, for the line under each table."""
    names = [Path(s).name for s in sources]
    return f"rank {names.index(expect) + 1}" if expect in names else f"not in the top {len(names)}"


def run(model: str | None, store_path: str, device: str | None) -> int:
    """Index the corpus, run every demo query, print tables; returns the exit code."""
    started = time.perf_counter()
    store: OmniStore = open_store(COLLECTION, path=store_path)
    try:
        embedder = load_embedder(model, device=device)
        print(f"model: {embedder.model_id} (dim {embedder.dim}); store: {display_path(store_path)}")
        if embedder.dim < TINY_DIM:
            print(
                f"note: dim {embedder.dim} means a tiny test checkpoint with random weights: "
                "the rankings below are meaningless (use the real model for real results)."
            )
        retriever = index_corpus(OmniRetriever(embedder, store), store_path)
        store = retriever.store
        for item in demo_queries():
            hits = search_hits(retriever, item.query, k=10, streams=item.streams)
            print(f"\n== {item.title}")
            print(render_hits(hits[:SHOWN]))
            print(f"   expected {item.expect}: {rank_of(item.expect, [hit_source(h) for h in hits])}")
    finally:
        store.close()
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    print("\nlook at the results (see and play each hit) in your browser:")
    print(f"  {serve_command(model, store_path, device)}")
    return 0


def serve_command(model: str | None, store_path: str, device: str | None) -> str:
    """The ``omni-rag serve`` command for the demo collection, with the model and store used here."""
    parts = ["omni-rag", "serve", "-c", COLLECTION, "--store", shlex.quote(display_path(store_path))]
    if model:
        parts += ["--model", shlex.quote(model)]
    if device:
        parts += ["--device", shlex.quote(device)]
    return " ".join(parts) + "   # then open http://127.0.0.1:8000/"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the demo's flags and run it, printing CLI-style errors (and exit codes) on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--model", help="hub id or local folder (default: $OMNI_RAG_MODEL, else the official model)"
    )
    parser.add_argument("--store", default=".omni-rag", help="embedded Qdrant folder (default: ./.omni-rag)")
    parser.add_argument("--device", help="torch device (default: CUDA if available)")
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        return run(args.model, args.store, args.device)
    except CliError as error:
        print(f"demo: error: {error.message}", file=sys.stderr)
        return int(error.code)


if __name__ == "__main__":
    sys.exit(main())
