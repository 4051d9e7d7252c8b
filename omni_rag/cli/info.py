"""``omni-rag info``: what a collection holds and which model filled it, without loading a model.

Torch-free on purpose: it answers in about a second, so checking a collection before a long
``index`` or a ``search`` costs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any

from omni_rag.cli.connect import open_store, store_location
from omni_rag.cli.render import render_info
from omni_rag.store import STREAMS, OmniStore


def collection_info(store: OmniStore, where: str) -> dict[str, Any]:
    """Points, points per stream, vector size and the model recorded at first index."""
    streams = {s: store.count(filter={"modalities": [s]}) for s in STREAMS}
    return {
        "collection": store.collection,
        "store": where,
        "points": store.count(),
        "streams": streams,
        "dim": store.dim,
        "engine": store.engine,
        "model": _shown_model(store.get_info()),
    }


def _shown_model(info: dict[str, Any]) -> dict[str, Any]:
    """The recorded model, with its fingerprint (a probe embedding) shortened to a digest."""
    if isinstance(info.get("fingerprint"), str):
        info = {**info, "fingerprint": hashlib.sha256(info["fingerprint"].encode()).hexdigest()[:16]}
    return info


def run_info(args: argparse.Namespace) -> int:
    """The ``info`` command."""
    store = open_store(args.collection, path=args.store, url=args.url, api_key=args.api_key, must_exist=True)
    try:
        info = collection_info(store, store_location(args.store, args.url))
    finally:
        store.close()
    print(json.dumps(info, indent=2) if args.json else render_info(info))
    return 0
