"""Turning results into text: one place, shared by the CLI and ``examples/demo.py``.

Pure functions from data to strings (no printing, no I/O besides the working directory for
shortening paths), so the demo shows exactly what the CLI shows and tests can compare them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omni_rag.folders import FolderReport
from omni_rag.hits import STORE_FIELDS, hit_metadata, hit_origin
from omni_rag.store import STREAMS, Hit

#: Longest source shown in a table cell; longer ones keep their end (the file name).
MAX_SOURCE_CHARS = 60


def format_seconds(seconds: float) -> str:
    """``750.4`` -> ``12:30``; ``3723`` -> ``1:02:03`` (what video players show)."""
    total = math.floor(seconds + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_span(start_s: float | None, end_s: float | None) -> str:
    """``12:30-13:30`` for a segment, ``""`` for a whole item."""
    if start_s is None and end_s is None:
        return ""
    start = format_seconds(start_s or 0.0)
    return f"{start}-{format_seconds(end_s)}" if end_s is not None else f"{start}-end"


def display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it; URLs and others unchanged.

    Control characters (a newline in a file name) are shown escaped, so one entry stays one line.
    """
    if "://" in path:
        return _printable(path)
    try:
        shown = os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        shown = path
    return _printable(shown)


def _printable(text: str) -> str:
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def hit_source(hit: Hit) -> str:
    """Where a hit came from (:func:`omni_rag.hits.hit_origin`), relative to here when below it."""
    return display_path(hit_origin(hit))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def render_hits(hits: Sequence[Hit]) -> str:
    """A fixed-width table: rank, fused score, one column per stream scored, time span, source.

    Scores of different fusion modes are on different scales (see :meth:`OmniStore.search`),
    so the table shows them as they are and never mixes modes.
    """
    if not hits:
        return "  (no results)"
    streams = [s for s in STREAMS if any(s in h.stream_scores for h in hits)]
    spans = [format_span(h.payload.get("start_s"), h.payload.get("end_s")) for h in hits]
    span_width = max((len(s) for s in spans), default=0)
    header = ["rank", "  score", *(f"{s:>6}" for s in streams)]
    if span_width:
        header.append(f"{'time':<{span_width}}")
    header.append("source")
    lines = ["  ".join(header)]
    for rank, (hit, span) in enumerate(zip(hits, spans, strict=True), start=1):
        cells = [f"{rank:>4}", f"{hit.score:>7.4f}"]
        cells += [f"{hit.stream_scores[s]:>6.3f}" if s in hit.stream_scores else f"{'-':>6}" for s in streams]
        if span_width:
            cells.append(f"{span:<{span_width}}")
        cells.append(_shorten(hit_source(hit), MAX_SOURCE_CHARS) + _copies(hit))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _copies(hit: Hit) -> str:
    """`` (+2 copies)`` when the same content lies at more paths than the one shown (all in ``--json``)."""
    paths = (hit.payload.get("metadata") or {}).get("paths") or []
    return f" (+{len(paths) - 1} {'copy' if len(paths) == 2 else 'copies'})" if len(paths) > 1 else ""


def hits_to_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The ``--json`` form: one object per hit, best first, store fields and user ``metadata``.

    The document text is left out (whole documents would swamp the output; ``path`` leads to them).
    """
    out = []
    for rank, hit in enumerate(hits, start=1):
        flat = hit_metadata(hit)
        user = {k: v for k, v in flat.items() if k not in STORE_FIELDS}
        fields = {k: flat[k] for k in STORE_FIELDS if k != "modality"}
        out.append({"rank": rank, **fields, "source": hit.source or user.get("path"), "metadata": user})
    return out


def render_index_report(report: FolderReport, *, collection: str, total: int) -> str:
    """The summary printed after ``index``: counts, then every skipped and failed file with its reason."""
    lines = [
        f"collection {collection!r}: {len(report.added)} added, {len(report.unchanged)} unchanged, "
        f"{len(report.duplicates)} duplicates, {len(report.skipped)} skipped, {len(report.failures)} failed, "
        f"{len(report.moved)} moved, {len(report.removed)} removed, {len(report.updated)} updated "
        f"({report.seconds:.1f} s; {total} points in the collection)"
    ]
    if report.duplicates:
        lines.append("duplicates (same content as a file indexed with them; one point records both paths):")
        lines += [f"  {display_path(copy)} = {display_path(first)}" for copy, first in report.duplicates]
    if report.moved:
        lines.append("moved (vectors kept, not embedded again):")
        lines += [f"  {display_path(old)} -> {display_path(new)}" for old, new in report.moved]
    if report.updated:
        lines.append("updated (content changed: embedded again, the old vectors dropped this path):")
        lines += [f"  {display_path(path)}" for path in report.updated]
    if report.removed:
        lines.append("removed (no longer in the folder, or excluded):")
        lines += [f"  {display_path(path)}" for path in report.removed]
    if report.notes:
        lines.append("indexed, please check:")
        lines += [f"  {display_path(p.path)}: {_printable(p.reason)}" for p in report.notes]
    if report.skipped:
        lines.append("skipped (not media or text):")
        lines += [f"  {display_path(p.path)}: {_printable(p.reason)}" for p in report.skipped]
    if report.failures:
        lines.append("failed:")
        lines += [f"  {display_path(p.path)}: {_printable(p.reason)}" for p in report.failures]
    return "\n".join(lines)


def render_info(info: Mapping[str, Any]) -> str:
    """``omni-rag info`` as aligned ``key: value`` lines (see :func:`omni_rag.cli.info.collection_info`)."""
    model = info.get("model") or {}
    streams = info.get("streams") or {}
    rows = [
        ("collection", info.get("collection")),
        ("store", info.get("store")),
        ("points", info.get("points")),
        ("streams", ", ".join(f"{s} {n}" for s, n in streams.items() if n) or "none"),
        ("dim", info.get("dim")),
        ("model", model.get("model_id", "(not recorded)")),
        ("revision", model.get("revision") or "-"),
    ]
    return "\n".join(f"{key + ':':<12}{value}" for key, value in rows)
