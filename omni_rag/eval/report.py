"""Render and persist ablation results so runs can be read next to the paper and diffed later.

A results file records everything that changes the numbers (configuration, model id and revision,
package versions) next to per-query scores, because two means can only be compared when one knows
what produced them and which queries moved.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from omni_rag.eval.errors import EvalError
from omni_rag.eval.metrics import EvalResult

TEXT = "Text"
AUDIO_ONLY = "Audio-only"
VIDEO_ONLY = "Video-only"
AV_JOINT = "Audio+Video joint (early fusion)"
AV_SEPARATE = "Audio+Video separately (late fusion, mean)"
RRF = "RRF"
DBSF = "DBSF"
#: Row order of ablation tables: the paper's Tables 2-3 columns, then the Qdrant fusion variants.
ABLATION_CONFIGS = (TEXT, AUDIO_ONLY, VIDEO_ONLY, AV_JOINT, AV_SEPARATE, RRF, DBSF)

#: NDCG@10 of Omni-Embed-Nemotron-3B in the paper (Table 2: LPM, Table 3: FineVideo).
PAPER_NDCG10: dict[str, dict[str, float]] = {
    "FineVideo": {
        TEXT: 0.6082,
        AUDIO_ONLY: 0.5407,
        VIDEO_ONLY: 0.4488,
        AV_JOINT: 0.4700,
        AV_SEPARATE: 0.5662,
    },
    "LPM": {TEXT: 0.8636, AUDIO_ONLY: 0.8238, VIDEO_ONLY: 0.7365, AV_JOINT: 0.8373, AV_SEPARATE: 0.8465},
}

PACKAGES = ("omni-rag", "torch", "transformers", "qdrant-client", "numpy", "pytrec-eval-terrier")
SCHEMA = "omni-rag/eval-results/1"


@dataclass(frozen=True)
class ResultsFile:
    """A results JSON read back by :func:`load_results`."""

    results: dict[str, EvalResult]
    config: dict[str, Any]
    model: dict[str, str | None]
    packages: dict[str, str | None]
    created: str


def ordered_configs(names: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Known configurations in paper order, then any others in the order given."""
    given = list(names)
    return [c for c in ABLATION_CONFIGS if c in given] + [c for c in given if c not in ABLATION_CONFIGS]


def ablation_table(
    results: Mapping[str, EvalResult], metric_keys: Sequence[str] | None = None, *, digits: int = 4
) -> str:
    """Markdown table, one row per configuration (paper order), one column per metric.

    ``metric_keys`` defaults to every metric of the first result. A ``Queries`` column is added
    because means over different query sets (a stream missing for some items) are not comparable.

    Raises:
        EvalError: No results, or a metric some configuration does not have.
    """
    if not results:
        raise EvalError("no results to tabulate")
    keys = list(metric_keys) if metric_keys is not None else list(next(iter(results.values())).means)
    header = ["Configuration", *keys, "Queries"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for name in ordered_configs(results):
        result = results[name]
        cells = [f"{result[key]:.{digits}f}" for key in keys]
        lines.append("| " + " | ".join([name.replace("|", "\\|"), *cells, str(result.num_queries)]) + " |")
    return "\n".join(lines) + "\n"


def ablation_chart(
    results: Mapping[str, EvalResult],
    metric: str,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    reference: Mapping[str, float] | None = None,
) -> Path:
    """Save a bar chart (PNG) of ``metric`` per configuration; returns the path written.

    ``reference`` (e.g. ``PAPER_NDCG10["FineVideo"]``) is drawn as markers so a reproduction can be
    eyeballed against the paper. Uses the Agg canvas directly: no display, no global pyplot state.

    Raises:
        EvalError: No results, unknown metric, or matplotlib missing.
    """
    if not results:
        raise EvalError("no results to plot")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise EvalError("ablation_chart needs `pip install matplotlib`") from exc
    names = ordered_configs(results)
    values = [results[name][metric] for name in names]
    figure = Figure(figsize=(max(6.0, 1.5 * len(names)), 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(names)))
    bars = axes.bar(positions, values, color="#76b900", edgecolor="#333333", label="this run")
    axes.bar_label(bars, labels=[f"{v:.4f}" for v in values], padding=2, fontsize=8)
    if reference:
        marked = [(i, reference[n]) for i, n in enumerate(names) if n in reference]
        if marked:
            xs, ys = zip(*marked, strict=True)
            axes.scatter(xs, ys, marker="_", s=900, linewidths=2.5, color="#c00000", zorder=3, label="paper")
            axes.legend(loc="upper right", fontsize=8, markerscale=0.4)
    axes.set_xticks(positions, [textwrap.fill(n, 14) for n in names], fontsize=8)
    axes.set_ylabel(metric)
    axes.set_ylim(0, max(1.0, *values) * 1.08)
    axes.set_title(title or f"{metric} by configuration")
    axes.grid(axis="y", alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (``None`` when absent) of the packages that change embeddings or scores."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def results_json(
    path: str | os.PathLike[str],
    results: Mapping[str, EvalResult],
    *,
    config: Mapping[str, Any],
    model_id: str | None = None,
    model_revision: str | None = None,
) -> Path:
    """Write per-query scores and means of every configuration with what produced them.

    ``config`` must be JSON-serialisable (CLI arguments, dataset paths, fusion settings...).

    Raises:
        EvalError: ``config`` cannot be written as JSON.
    """
    document = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"id": model_id, "revision": model_revision},
        "config": dict(config),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "results": {name: results[name].to_dict() for name in ordered_configs(results)},
    }
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EvalError(f"results are not JSON-serialisable: {exc}") from exc
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    return out


def load_results(path: str | os.PathLike[str]) -> ResultsFile:
    """Read a file written by :func:`results_json`.

    Raises:
        EvalError: Unreadable file or not a results file.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{os.fspath(path)}: cannot read results: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise EvalError(f"{os.fspath(path)}: not an omni-rag results file (schema {SCHEMA!r})")
    return ResultsFile(
        results={name: EvalResult.from_dict(r) for name, r in data["results"].items()},
        config=data.get("config", {}),
        model=data.get("model", {}),
        packages=data.get("packages", {}),
        created=data.get("created", ""),
    )


def compare(a_path: str | os.PathLike[str], b_path: str | os.PathLike[str], *, digits: int = 4) -> str:
    """Markdown diff of two results files: per configuration and metric, A, B, B - A, and queries moved.

    Differences in model, configuration, packages and query sets are listed first, since they
    explain (or invalidate) the deltas below them.

    Raises:
        EvalError: Either file unreadable.
    """
    a, b = load_results(a_path), load_results(b_path)
    notes = [f"A: {os.fspath(a_path)} ({a.created})", f"B: {os.fspath(b_path)} ({b.created})"]
    for label, left, right in (
        ("model", a.model, b.model),
        ("config", a.config, b.config),
        ("package", a.packages, b.packages),
    ):
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                notes.append(f"{label} `{key}`: {left.get(key)!r} -> {right.get(key)!r}")
    only_a = [c for c in a.results if c not in b.results]
    only_b = [c for c in b.results if c not in a.results]
    if only_a:
        notes.append(f"only in A: {', '.join(only_a)}")
    if only_b:
        notes.append(f"only in B: {', '.join(only_b)}")
    header = "| Configuration | Metric | A | B | Δ (B−A) | Queries better / worse in B |"
    lines = ["", header, "|---|---|---:|---:|---:|---:|"]
    for name in ordered_configs([c for c in b.results if c in a.results]):
        ra, rb = a.results[name], b.results[name]
        if set(ra.per_query) != set(rb.per_query):
            notes.append(
                f"{name}: query sets differ ({ra.num_queries} vs {rb.num_queries}); "
                "per-query counts use the common ones"
            )
        common = [q for q in ra.per_query if q in rb.per_query]
        for metric in [m for m in ra.means if m in rb.means]:
            deltas = [rb.per_query[q][metric] - ra.per_query[q][metric] for q in common]
            better = sum(1 for d in deltas if d > 1e-12)
            worse = sum(1 for d in deltas if d < -1e-12)
            va, vb = ra.means[metric], rb.means[metric]
            lines.append(
                f"| {name.replace('|', chr(92) + '|')} | {metric} | {va:.{digits}f} | {vb:.{digits}f} "
                f"| {vb - va:+.{digits}f} | {better} / {worse} |"
            )
    return "\n".join([*(f"- {n}" for n in notes), *lines]) + "\n"
