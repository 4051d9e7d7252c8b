"""The search half of :class:`~omni_rag.store.OmniStore`: plan a query, run its index queries,
score the candidates exactly and fuse (see :mod:`omni_rag.store.planning`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from qdrant_client import models

from omni_rag.store.engine import (
    Engine,
    EngineRecord,
    FusedQuery,
    Nearest,
)
from omni_rag.store.errors import (
    DimensionMismatchError,
    StoreInputError,
)
from omni_rag.store.filters import (
    FilterLike,
    streams_in_set,
    to_filter,
)
from omni_rag.store.fusion import fuse, resolve_streams, resolve_weights, unit
from omni_rag.store.models import (
    FUSION_MODES,
    FusionMode,
    Hit,
    HitGroup,
    PayloadKey,
)
from omni_rag.store.payloads import make_hit
from omni_rag.store.planning import (
    GROUP_ROUNDS,
    LARGE_LIMIT,
    GroupKey,
    Plan,
    add_to_groups,
    best,
    excluding,
    max_requests,
    mean_requests,
)
from omni_rag.store.validation import check_hnsw_ef, check_oversampling, check_query


@dataclass(frozen=True)
class SearchOptions:
    """One search call's options, shared by every query of :meth:`StoreSearch.search_many`."""

    streams: Sequence[str] | None
    fusion: FusionMode
    weights: Mapping[str, float] | None
    limit: int
    filter: FilterLike | None
    oversampling: float | None
    hnsw_ef: int | None
    exact: bool

    def plan_args(self) -> tuple[Any, ...]:
        """The arguments :meth:`StoreSearch._plan` takes after the query vector."""
        return (
            self.streams,
            self.fusion,
            self.weights,
            self.limit,
            self.filter,
            self.oversampling,
            self.hnsw_ef,
            self.exact,
        )


def _fused_hits(
    plan: Plan, records: list[EngineRecord], scores: np.ndarray, mode: Literal["mean", "max"]
) -> list[Hit]:
    """Hits from exact per-stream scores, best first (ties by id); points with no selected stream go."""
    fused = fuse(scores, plan.weights, mode)
    hits = [
        make_hit(record, float(fused[i]), scores[i], plan.streams)
        for i, record in enumerate(records)
        if not np.isnan(fused[i])
    ]
    hits.sort(key=lambda h: (-h.score, h.id))
    return hits


class StoreSearch:
    """Searching methods :class:`~omni_rag.store.OmniStore` inherits; it supplies the state below."""

    collection: str
    oversampling: float
    hnsw_ef: int | None
    _engine: Engine
    _dim: int | None

    def _refresh(self, expected_dim: int | None = None) -> bool:
        raise NotImplementedError

    def count(self, filter: FilterLike | None = None) -> int:
        raise NotImplementedError

    def search(
        self,
        query_vector: np.ndarray,
        *,
        streams: Sequence[str] | None = None,
        fusion: FusionMode = "mean",
        weights: Mapping[str, float] | None = None,
        limit: int = 10,
        filter: FilterLike | None = None,
        oversampling: float | None = None,
        hnsw_ef: int | None = None,
        exact: bool = False,
    ) -> list[Hit]:
        """Best items for a query, scoring each stream separately and fusing the scores.

        Args:
            query_vector: 1-D query embedding of size ``dim``.
            streams: Streams to score on; ``["audio"]`` alone is the paper's Audio-only setting.
                Default: all.
            fusion: ``mean`` (default): Σ w·cos / Σ w over the selected streams a point has.
                ``max``: best w·cos among them. ``rrf`` / ``dbsf``: Qdrant's native rank /
                distribution-based fusion of the per-stream result lists.
            weights: Per-stream weights (default 1); ``rrf`` uses them as weighted RRF, ``dbsf``
                takes none.
            limit: Number of hits.
            filter: A Qdrant ``Filter`` or ``{payload_key: value}`` (``metadata.<key>`` for user
                data), see :func:`to_filter`.
            oversampling: Candidates per index query as a multiple of ``limit``.
            hnsw_ef: HNSW search effort (default: the store's); higher finds more of the true top k.
            exact: Search without the index's approximation (a full scan): brute-force results.

        Returns:
            Hits, best first; ``[]`` when the collection is empty or not created yet.
        """
        options = SearchOptions(streams, fusion, weights, limit, filter, oversampling, hnsw_ef, exact)
        return self._search_all([query_vector], options)[0]

    def search_many(
        self,
        query_vectors: Sequence[np.ndarray],
        *,
        streams: Sequence[str] | None = None,
        fusion: FusionMode = "mean",
        weights: Mapping[str, float] | None = None,
        limit: int = 10,
        filter: FilterLike | None = None,
        oversampling: float | None = None,
        hnsw_ef: int | None = None,
        exact: bool = False,
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries with the same options, hits per query in input order.

        The same hits as one :meth:`search` per query, with one engine request batch for all of
        them: each engine call hands its work to the engine's own threads and waits, and on a busy
        machine that hand-off, paid per call, cost more than searching (``omni-rag serve`` searches
        a micro-batch of queries this way).
        """
        options = SearchOptions(streams, fusion, weights, limit, filter, oversampling, hnsw_ef, exact)
        return self._search_all(list(query_vectors), options)

    def _search_all(self, query_vectors: list[np.ndarray], options: SearchOptions) -> list[list[Hit]]:
        plans = [self._plan(q, *options.plan_args()) for q in query_vectors]
        ready = [plan for plan in plans if plan is not None]
        if len(ready) < len(plans) or not ready:
            return [[] for _ in query_vectors]  # nothing stored yet: the same for every query
        limit = self._clamped(options.limit)
        per_query = math.ceil(limit * ready[0].oversampling)
        if options.fusion in ("rrf", "dbsf"):
            weighted = options.weights is not None
            return [self._native_hits(plan, options.fusion, limit, per_query, weighted) for plan in ready]
        keep = limit if options.fusion == "mean" else None
        return [hits[:limit] for hits in self._exact_hits_many(ready, options.fusion, per_query, keep)]

    def search_groups(
        self,
        query_vector: np.ndarray,
        *,
        group_by: str = PayloadKey.SOURCE,
        group_size: int = 3,
        limit: int = 10,
        streams: Sequence[str] | None = None,
        fusion: FusionMode = "mean",
        weights: Mapping[str, float] | None = None,
        filter: FilterLike | None = None,
        oversampling: float | None = None,
        hnsw_ef: int | None = None,
        exact: bool = False,
    ) -> list[HitGroup]:
        """Best groups (by default sources: a video with its segments), each with its best hits.

        Candidates (``limit x group_size x oversampling`` per index query) are grouped here; when
        fewer than ``limit`` groups come back and more candidates exist, the query runs again
        excluding the groups already full, so one source with many segments cannot crowd the
        others out. Points without a ``source`` (text documents) are their own group, keyed by id.
        For ``rrf``/``dbsf`` groups found in a later round rank after the earlier ones, since
        their fused scores come from another candidate set.
        """
        if group_size < 1:
            raise StoreInputError(f"group_size must be >= 1, got {group_size}")
        plan = self._plan(query_vector, streams, fusion, weights, limit, filter, oversampling, hnsw_ef, exact)
        if plan is None:
            return []
        limit = self._clamped(limit)
        group_size = self._clamped(group_size)
        per_query = math.ceil(limit * group_size * plan.oversampling)
        groups: dict[GroupKey, list[Hit]] = {}
        for _ in range(GROUP_ROUNDS):
            full = [k for k, hits in groups.items() if len(hits) >= group_size]
            round_plan = excluding(plan, group_by, full)
            if fusion in ("rrf", "dbsf"):
                hits = self._native_hits(round_plan, fusion, per_query, per_query, weights is not None)
            else:
                hits = self._exact_hits(round_plan, fusion, per_query)
            add_to_groups(groups, hits, group_by, group_size)
            if len(groups) >= limit or len(hits) < per_query:
                break
        # hits arrive best first, so dict order is the order of each group's best hit
        return [HitGroup(key=key[1], hits=tuple(hits)) for key, hits in list(groups.items())[:limit]]

    def _clamped(self, limit: int) -> int:
        """A limit past what any engine request can hold is the point count: no search returns more."""
        return limit if limit <= LARGE_LIMIT else max(1, min(limit, self.count()))

    def _plan(
        self,
        query_vector: np.ndarray,
        streams: Sequence[str] | None,
        fusion: str,
        weights: Mapping[str, float] | None,
        limit: int,
        filter: FilterLike | None,
        oversampling: float | None,
        hnsw_ef: int | None,
        exact: bool,
    ) -> Plan | None:
        """Validate a query; ``None`` means there is nothing to search yet."""
        if fusion not in FUSION_MODES:
            raise StoreInputError(f"fusion must be one of {list(FUSION_MODES)}, got {fusion!r}")
        selected = resolve_streams(streams)
        weight_arr = resolve_weights(selected, weights)
        if fusion == "dbsf" and weights is not None:
            raise StoreInputError(
                "fusion='dbsf' takes no weights (Qdrant's DBSF is unweighted); use rrf or mean"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreInputError(f"limit must be an int >= 1, got {limit!r}")
        oversampling = self.oversampling if oversampling is None else oversampling
        check_oversampling(oversampling)
        check_hnsw_ef(hnsw_ef)
        query = check_query(query_vector)
        qdrant_filter = to_filter(filter)
        if not self._refresh():
            return None
        if query.shape[0] != self._dim:
            raise DimensionMismatchError(
                f"query has {query.shape[0]} dims, collection '{self.collection}' has {self._dim}"
            )
        effort = hnsw_ef if hnsw_ef is not None else self.hnsw_ef
        counts = sorted(self._engine.stream_sets().items())
        if not counts:
            return None
        sets = tuple(streams_in_set(value) for value, _ in counts)
        sizes = tuple(n for _, n in counts)
        vector = unit(query)
        return Plan(vector, selected, weight_arr, qdrant_filter, oversampling, effort, exact, sets, sizes)

    def _exact_hits(self, plan: Plan, fusion: str, per_query: int, keep: int | None = None) -> list[Hit]:
        return self._exact_hits_many([plan], fusion, per_query, keep)[0]

    def _exact_hits_many(
        self, plans: Sequence[Plan], fusion: str, per_query: int, keep: int | None = None
    ) -> list[list[Hit]]:
        """Index candidates (per stream combination for mean, per stream for max), scored exactly.

        Candidates whose index score already is their fused score (one stream, or the audio+video
        fused vector) come as bare ids; only the best ``keep`` (all when ``None``) get their payload
        and their exact per-stream scores (:attr:`Hit.stream_scores`). Every plan's requests go to
        the engine in one batch, then every plan's rescoring in another.
        """
        make = mean_requests if fusion == "mean" else max_requests
        requests = [make(plan, per_query) for plan in plans]
        results = iter(self._engine.nearest([r for rs in requests for r in rs]) if any(requests) else [])
        candidates: list[list[EngineRecord]] = []
        for own in requests:
            seen: dict[str, EngineRecord] = {}
            for _ in own:
                for record in next(results):
                    seen.setdefault(record.id, record)
            # per-stream candidates carry no fused score to pick the best by: rescore all
            candidates.append(best(list(seen.values()), None if any(r.with_payload for r in own) else keep))
        candidates = self._with_payload(candidates)
        scores = self._stream_scores(plans, candidates)
        mode: Literal["mean", "max"] = "max" if fusion == "max" else "mean"
        return [
            _fused_hits(plan, records, table, mode)
            for plan, records, table in zip(plans, candidates, scores, strict=True)
        ]

    def _with_payload(self, lists: list[list[EngineRecord]]) -> list[list[EngineRecord]]:
        missing = list(dict.fromkeys(r.id for records in lists for r in records if not r.payload))
        if not missing:
            return lists
        fetched = {r.id: r for r in self._engine.retrieve(missing, with_vectors=False)}
        return [[fetched.get(r.id, r) if not r.payload else r for r in records] for records in lists]

    def _stream_scores(self, plans: Sequence[Plan], lists: Sequence[list[EngineRecord]]) -> list[np.ndarray]:
        """Exact cosine per candidate and stream (``NaN`` where a point lacks the stream), per plan.

        The engine scores the candidates itself (an exact search restricted to their ids, on the
        float32 originals): the same numbers as fetching the vectors and scoring them here, without
        shipping 8 KB per stream per candidate, which cost more than the index search.
        """
        tables = [np.full((len(r), len(p.streams)), np.nan) for p, r in zip(plans, lists, strict=True)]
        asked: list[tuple[int, int]] = []  # (plan, stream column) of each request
        requests: list[Nearest] = []
        for number, (plan, records) in enumerate(zip(plans, lists, strict=True)):
            if not records:
                continue
            only = models.Filter(must=[models.HasIdCondition(has_id=[r.id for r in records])])
            for j, stream in enumerate(plan.streams):
                if stream in plan.present:
                    asked.append((number, j))
                    requests.append(
                        Nearest(stream, plan.query, len(records), only, exact=True, with_payload=False)
                    )
        rows = [{r.id: i for i, r in enumerate(records)} for records in lists]
        answers = self._engine.nearest(requests) if requests else []
        for (number, j), results in zip(asked, answers, strict=True):
            for record in results:
                tables[number][rows[number][record.id], j] = record.score
        return tables

    def _native_hits(self, plan: Plan, fusion: str, limit: int, per_query: int, weighted: bool) -> list[Hit]:
        # streams no point has would add empty lists: leaving them out changes no fused score
        searched = [(s, w) for s, w in zip(plan.streams, plan.weights, strict=True) if s in plan.present]
        if not searched:
            return []
        query = FusedQuery(
            fusion="dbsf" if fusion == "dbsf" else "rrf",
            prefetch=tuple(plan.nearest(s, plan.query, per_query, None) for s, _ in searched),
            limit=limit,
            weights=tuple(float(w) for _, w in searched) if weighted else None,
        )
        records = self._engine.fused(query)
        scores = self._stream_scores([plan], [records])[0]
        hits = [make_hit(r, float(r.score or 0.0), scores[i], plan.streams) for i, r in enumerate(records)]
        hits.sort(key=lambda h: (-h.score, h.id))  # rank fusion ties often; the engine orders them at random
        return hits
