"""How a search runs on the engine: the validated query (:class:`Plan`), the index queries each
fusion mode makes (one per stream combination for ``mean``, one per stream for ``max``), and the
grouping of hits by source.

``mean`` is an index search, then exact: for unit vectors the weighted mean of per-stream cosines
over the streams a point has equals one inner product with the point's fused vector and the query
repeated per block, so there is one query per subset of the selected streams that some point has,
and the best candidates are rescored exactly by the engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
from qdrant_client import models

from omni_rag.store.engine import (
    FUSED,
    FUSED_STREAMS,
    EngineRecord,
    Nearest,
)
from omni_rag.store.filters import (
    all_of,
    in_stream_sets,
    none_of,
    stream_set,
)
from omni_rag.store.models import (
    STREAMS,
    Hit,
    PayloadKey,
    Stream,
)

#: Limits above this are clamped to the point count (an engine request holds a 64-bit count at most).
LARGE_LIMIT = 100_000


#: Rounds of re-querying past full groups in :meth:`OmniStore.search_groups`.
GROUP_ROUNDS = 8


#: HNSW effort of the fused audio+video query when the caller sets none. Its 4,096-d inner
#: products are flatter than one stream's cosines (more near-ties), so the engine's default
#: effort found 0.93 of the exact top 10 at 100k points where 256 finds 0.95 (bench_store.py).
FUSED_HNSW_EF = 256

#: Past this many audio+video points the fused query's default effort doubles: at 100k points
#: 256 found 0.948 of the exact top 10 near stored items and 512 found 0.978 (bench_store.py);
#: at 20k, 256 already finds 0.98-0.99 at two thirds of the time.
LARGE_FUSED_POINTS = 50_000


def fused_effort(points: int) -> int:
    """The fused query's default HNSW effort for a collection with ``points`` audio+video points."""
    return FUSED_HNSW_EF if points <= LARGE_FUSED_POINTS else 2 * FUSED_HNSW_EF


@dataclass(frozen=True)
class Plan:
    """A validated query: what every search path needs."""

    query: np.ndarray
    streams: tuple[Stream, ...]
    weights: np.ndarray
    filter: models.Filter | None
    oversampling: float
    hnsw_ef: int | None
    exact: bool
    sets: tuple[frozenset[str], ...] = (frozenset(STREAMS),)
    sizes: tuple[int, ...] = (0,)
    """Points with each of :attr:`sets`."""

    @cached_property
    def present(self) -> frozenset[str]:
        """Streams at least one point has."""
        return frozenset().union(*self.sets)

    def searched(self) -> list[tuple[Stream, float]]:
        """Selected streams with a positive weight that some point has: the ones worth a query."""
        pairs = zip(self.streams, self.weights, strict=True)
        return [(s, float(w)) for s, w in pairs if w > 0 and s in self.present]

    def nearest(
        self, using: str, vector: np.ndarray, limit: int, extra: models.Filter | None, *, fused: bool = False
    ) -> Nearest:
        """An index query for candidates; ``fused=True`` when its score already is the fused score.

        Those come back as bare ids and scores, and only the best get their payload afterwards.
        """
        return Nearest(
            using=using,
            vector=vector,
            limit=limit,
            filter=all_of(self.filter, extra),
            hnsw_ef=self.hnsw_ef,
            exact=self.exact,
            with_payload=not fused,
        )


def mean_requests(plan: Plan, per_query: int) -> list[Nearest]:
    """Index queries for every subset U of the selected streams that some point has.

    Each is filtered to points whose selected streams are exactly U (by ``stream_set``; no filter
    when every point qualifies), so every point is scored by the mean over the selected streams it
    has, as documented, and a combination no point has costs no query. A single stream searches
    its own cosine vector; audio+video searches the fused vector with the query blocks weighted
    w / Σ_U w (one HNSW search for the exact weighted mean, at :func:`fused_effort` unless the
    caller set the effort); other combinations, which only items mixing text or an image with
    audio/video have, take each stream's candidates (as ``max`` does). Candidates are rescored
    exactly by the caller.
    """
    weight: dict[str, float] = dict(plan.searched())
    active = frozenset(weight)
    requests = []
    for size in range(1, len(active) + 1):
        for used in itertools.combinations([s for s in STREAMS if s in active], size):
            sized = zip(plan.sets, plan.sizes, strict=True)
            matching = [(c, n) for c, n in sized if c & active == frozenset(used)]
            if not matching:
                continue
            every = len(matching) == len(plan.sets)
            only = None if every else in_stream_sets([stream_set(c) for c, _ in matching])
            if size == 1:
                requests.append(plan.nearest(used[0], plan.query, per_query, only, fused=True))
            elif used == FUSED_STREAMS:
                total = weight["audio"] + weight["video"]
                blocks = np.concatenate([plan.query * (weight[s] / total) for s in FUSED_STREAMS])
                fused = plan.nearest(FUSED, blocks, per_query, only, fused=True)
                effort = fused_effort(sum(n for _, n in matching))
                requests.append(fused if plan.hnsw_ef is not None else replace(fused, hnsw_ef=effort))
            else:  # text/image with other streams (only Python callers make these): per-stream candidates
                requests.extend(plan.nearest(s, plan.query, per_query, only) for s in used)
    return requests


def best(records: list[EngineRecord], keep: int | None) -> list[EngineRecord]:
    """The ``keep`` best candidates by their index (fused) score, twice ``keep`` for margin."""
    if keep is None or len(records) <= 2 * keep:
        return records
    ranked = sorted(records, key=lambda r: -(r.score if r.score is not None else -2.0))
    return ranked[: 2 * keep]


def max_requests(plan: Plan, per_query: int) -> list[Nearest]:
    return [plan.nearest(s, plan.query, per_query, None) for s, _ in plan.searched()]


GroupKey = tuple[bool, str | int]
"""(keyed by the point's own id, value): text documents have no source and are their own group."""


def excluding(plan: Plan, group_by: str, keys: Sequence[GroupKey]) -> Plan:
    """The plan with the groups in ``keys`` filtered out, to page past groups already full."""
    shared = [value for own, value in keys if not own]
    own_ids = [value for own, value in keys if own]
    extra = all_of(none_of(group_by, shared), none_of(PayloadKey.ID, own_ids))
    return replace(plan, filter=all_of(plan.filter, extra)) if extra is not None else plan


def add_to_groups(groups: dict[GroupKey, list[Hit]], hits: Sequence[Hit], group_by: str, size: int) -> None:
    for hit in hits:
        for key in group_keys(hit, group_by):
            members = groups.setdefault(key, [])
            if len(members) < size and all(m.id != hit.id for m in members):
                members.append(hit)


def group_keys(hit: Hit, group_by: str) -> list[GroupKey]:
    value: Any = hit.payload
    for part in group_by.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None and group_by == PayloadKey.SOURCE:
        return [(True, hit.id)]
    values = value if isinstance(value, list) else [value]
    return [(False, v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)]
