"""Late-fusion maths on per-stream cosine scores, in numpy.

Kept apart from the Qdrant code so the scoring rule can be read, tested and reused (for
instance by an evaluation script) without a database. Missing streams are ``NaN`` in the
score matrix: a video without a text stream is scored on what it has rather than being
punished with a zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from omni_rag.store.errors import StoreInputError, UnknownStreamError
from omni_rag.store.models import STREAMS, Stream


def resolve_streams(streams: Sequence[str] | None) -> tuple[Stream, ...]:
    """Validate stream names and return them deduplicated in canonical order.

    Canonical order makes prefetch order, RRF weights and score columns line up whatever
    order the caller wrote.
    """
    if streams is None:
        return STREAMS
    if isinstance(streams, str):
        streams = [streams]
    unknown = [s for s in streams if s not in STREAMS]
    if unknown:
        raise UnknownStreamError(f"unknown stream(s) {unknown}; expected a subset of {list(STREAMS)}")
    if not streams:
        raise StoreInputError("streams is empty; pass None for all streams")
    return tuple(s for s in STREAMS if s in streams)


def resolve_weights(streams: Sequence[Stream], weights: Mapping[str, float] | None) -> np.ndarray:
    """Weight per selected stream (default 1.0).

    Weights of streams that are not selected are ignored, so a caller can keep one weight
    table and vary ``streams`` per query.
    """
    weights = weights or {}
    unknown = [s for s in weights if s not in STREAMS]
    if unknown:
        raise UnknownStreamError(f"weights for unknown stream(s) {unknown}; expected {list(STREAMS)}")
    bad = {
        s: w for s, w in weights.items() if isinstance(w, bool) or not isinstance(w, (int, float, np.number))
    }
    if bad:
        raise StoreInputError(f"weights must be numbers, got {bad}")
    out = np.array([float(weights.get(s, 1.0)) for s in streams], dtype=np.float64)
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise StoreInputError(f"weights must be finite and >= 0, got {dict(weights)}")
    if not np.any(out > 0):
        raise StoreInputError(f"at least one selected stream needs a weight > 0, got {dict(weights)}")
    return out


def unit(vector: np.ndarray) -> np.ndarray:
    """L2-normalise in float64; cosine is the dot product of unit vectors."""
    v = np.asarray(vector, dtype=np.float64)
    return v / np.linalg.norm(v)


def score_matrix(
    query: np.ndarray,
    vectors: Sequence[Mapping[str, Sequence[float] | np.ndarray]],
    streams: Sequence[Stream],
) -> np.ndarray:
    """Exact cosine of ``query`` with each candidate's streams.

    Returns:
        Array of shape ``(len(vectors), len(streams))``; ``NaN`` where a candidate lacks a stream.
    """
    q = unit(query)
    out = np.full((len(vectors), len(streams)), np.nan, dtype=np.float64)
    for j, stream in enumerate(streams):
        rows = [i for i, v in enumerate(vectors) if stream in v]
        if not rows:
            continue
        mat = np.asarray([vectors[i][stream] for i in rows], dtype=np.float64)
        norms = np.linalg.norm(mat, axis=1)
        out[rows, j] = (mat @ q) / np.where(norms > 0, norms, 1.0)
    return out


def fuse(scores: np.ndarray, weights: np.ndarray, mode: Literal["mean", "max"]) -> np.ndarray:
    """Fuse a ``(n, streams)`` score matrix into one score per row.

    ``mean`` is Σ w·cos / Σ w over the streams a row has; ``max`` is the largest w·cos among
    them (streams with weight 0 are left out). Rows with no usable stream get ``NaN``.
    """
    present = ~np.isnan(scores) & (weights > 0)
    if mode == "mean":
        w = np.where(present, weights, 0.0)
        total = w.sum(axis=1)
        num = np.where(present, scores, 0.0) @ weights
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, num / np.where(total > 0, total, 1.0), np.nan)
    if mode == "max":
        weighted = np.where(present, scores * weights, -np.inf)
        best = weighted.max(axis=1) if scores.shape[1] else np.full(scores.shape[0], -np.inf)
        return np.where(np.isfinite(best), best, np.nan)
    raise StoreInputError(f"fusion {mode!r} is not computed client-side")
