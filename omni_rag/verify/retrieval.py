"""Step 4: the demo corpus retrieved as the demo says it should be (real weights only).

``examples/queries/queries.json`` lists each text and spoken query over ``examples/media``
with the file that should rank first; the corpus is indexed into an in-memory store through
``OmniRetriever``, exactly as ``omni-rag index`` would, and the pass count reported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omni_rag.content import Content
from omni_rag.embedder import OmniEmbedder
from omni_rag.verify.report import Status, StepResult

#: Below this embedding size a checkpoint is a tiny test checkpoint with random weights (the real
#: model has 2048 dims; ``omni_rag.testing`` builds 64): its rankings mean nothing. Same rule as
#: ``examples/demo.py``.
TINY_DIM = 256

#: Share of the demo queries that must rank the expected file first. The demo's own notes expect
#: some single-stream queries to be hard, hence not all; a random ranking gets about 1.5 of 12.
MIN_RANK1_FRACTION = 0.75

#: How each corpus file is indexed, by suffix: the streams ``omni-rag index`` would give it.
_FIELDS: dict[str, tuple[str, ...]] = {
    ".mp4": ("video", "audio"),
    ".wav": ("audio",),
    ".mp3": ("audio",),
    ".flac": ("audio",),
    ".png": ("image",),
    ".jpg": ("image",),
    ".md": ("text",),
}


@dataclass(frozen=True)
class Query:
    """One query of ``queries.json`` and the file that should rank first."""

    label: str
    query: Content
    expect: str


def load_queries(queries_dir: Path) -> list[Query]:
    """Every text and spoken query of ``queries.json`` (the demo's single source of truth)."""
    spec = json.loads((queries_dir / "queries.json").read_text(encoding="utf-8"))
    queries = [Query(e["query"], Content(text=e["query"]), e["expect"]) for e in spec["text"]]
    for entry in spec["audio"]:
        path = queries_dir / entry["query_file"]
        queries.append(Query(entry["query_file"], Content(audio=str(path)), entry["expect"]))
    return queries


def corpus_item(path: Path) -> Content:
    """A corpus file as the item ``omni-rag index`` makes of it (an mp4 without audio is video only)."""
    fields = _FIELDS[path.suffix]
    if fields == ("text",):
        return Content(text=path.read_text(encoding="utf-8"))
    if "audio" in fields and path.suffix == ".mp4" and not has_audio(path):
        fields = ("video",)
    fields_of: dict[str, Any] = {name: str(path) for name in fields}
    return Content(**fields_of)


def has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as container:
        return bool(container.streams.audio)


def rank_queries(embedder: OmniEmbedder, media: Path, queries: list[Query]) -> dict[str, list[str]]:
    """Index the corpus in memory and return the ranked file names for each query label."""
    from omni_rag.retriever import OmniRetriever
    from omni_rag.store import OmniStore

    files = sorted(p for p in media.iterdir() if p.suffix in _FIELDS)
    store = OmniStore("omni-rag-verify", location=":memory:")
    try:
        retriever = OmniRetriever(embedder, store)
        retriever.add([corpus_item(p) for p in files], ids=[p.name for p in files])
        return {
            q.label: list(dict.fromkeys(h.id.split("#")[0] for h in retriever.search(q.query, k=len(files))))
            for q in queries
        }
    finally:
        store.close()


def retrieval_step(
    embedder: OmniEmbedder, media: Path, queries_dir: Path, *, force: bool = False
) -> StepResult:
    """Rank-1 pass count over the demo queries; skipped for random weights unless ``force``."""
    step = StepResult("retrieval")
    if embedder.dim < TINY_DIM and not force:
        step.reason = f"not meaningful for random weights ({embedder.dim}-d test checkpoint)"
        step.add("retrieval", "skipped", step.reason)
        return step
    queries = load_queries(queries_dir)
    rankings = rank_queries(embedder, media, queries)
    results = []
    for q in queries:
        ranked = rankings[q.label]
        rank = ranked.index(q.expect) + 1 if q.expect in ranked else None
        results.append(
            {"query": q.label, "expect": q.expect, "top": ranked[0] if ranked else None, "rank": rank}
        )
    passed = sum(r["rank"] == 1 for r in results)
    needed = math.ceil(MIN_RANK1_FRACTION * len(queries))
    misses = "; ".join(
        f"{r['query']!r}: {r['top']} first, {r['expect']} at {r['rank']}" for r in results if r["rank"] != 1
    )
    status: Status = "pass" if passed >= needed else "fail"
    step.reason = f"{passed}/{len(queries)} queries rank the expected file first (at least {needed} needed)"
    step.add(
        "rank 1",
        status,
        step.reason + (f"; misses: {misses}" if misses else ""),
        passed=passed,
        queries=results,
    )
    return step
