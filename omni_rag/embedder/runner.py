"""One embed call's work: prepare ahead in workers, sort, batch by tokens, embed with back-off.

The flow, per call::

    workers prepare items in order (``ahead`` items in flight)
      -> a group of at most GROUP_BATCHES budgets (or batch sizes) is sorted by length
      -> cut into batches (:func:`length_sorted_batches`); the next batch is collated (and
         pinned) in a worker while the current one runs; between batches, finished
         preparations are collected so the workers never idle
      -> a batch that runs out of memory is split in halves and retried; a single item that
         does not fit fails alone.

Results are written by position, so order never depends on timing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omni_rag.content import Content
from omni_rag.embedder.base import EmbeddingBackend, ErrorPolicy, Kind, PreparedItem, require_modalities
from omni_rag.embedder.batching import length_sorted_batches
from omni_rag.embedder.budget import is_out_of_memory, release_cached_memory
from omni_rag.embedder.pipeline import Outcome, Prefetcher, Workers
from omni_rag.errors import ItemFailure, OmniInputError

logger = logging.getLogger(__name__)

#: A group (sorted as a whole) holds at most this many batches' worth of items or tokens:
#: enough to sort well, few enough that decoded media stay in host memory.
GROUP_BATCHES = 4
#: Most items prepared ahead of the consumer (besides the group being embedded).
MAX_AHEAD = 64

Ready = tuple[int, PreparedItem]  # (position in the call's contents, prepared item)


@dataclass
class RunSpec:
    """What one call asks for; failures are recorded against ``owner[position]``."""

    kind: Kind
    batch_size: int
    max_tokens: int
    errors: ErrorPolicy
    owner: Sequence[int]
    failures: list[ItemFailure]
    progress: Any = None  # a tqdm bar (or anything with ``update(n)``)
    out: dict[int, np.ndarray] = field(default_factory=dict)


class BatchRunner:
    """Runs :class:`RunSpec` on a backend with ``num_workers`` preparation threads (of ``pool``, if given)."""

    def __init__(
        self,
        backend: EmbeddingBackend,
        spec: RunSpec,
        num_workers: int,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.backend = backend
        self.spec = spec
        self.pool = pool
        # a backend opts in: preparing in threads while the model runs must be safe for it (the
        # Nemotron VL backend's tokenizer is also used by its forward pass, so it prepares serially)
        self.num_workers = num_workers if getattr(backend, "parallel_prepare", False) else 1
        self.packed = bool(getattr(backend, "packed", False))
        self.collates = callable(getattr(backend, "collate", None)) and callable(
            getattr(backend, "embed_collated", None)
        )

    def run(self, contents: Sequence[Content]) -> list[np.ndarray | None]:
        """Vectors by position; ``None`` where the item failed (recorded in ``spec.failures``)."""
        failed = {f.index for f in self.spec.failures}
        todo = [p for p in range(len(contents)) if self.spec.owner[p] not in failed]
        num_workers = self.num_workers if self._overlaps(contents, todo) else 1
        ahead = max(2 * num_workers, min(2 * self.spec.batch_size, MAX_AHEAD))
        with Workers(num_workers, self.pool) as workers:
            feed: Prefetcher[int, PreparedItem] = Prefetcher(
                workers, lambda p: self._prepare(contents[p], p), todo, ahead=ahead
            )
            backlog: deque[Outcome[int, PreparedItem]] = deque()
            while backlog or not feed.exhausted:
                group = self._next_group(backlog, feed)
                if group:
                    self._embed_group(group, workers, feed, backlog)
        return [self.spec.out.get(p) for p in range(len(contents))]

    def _overlaps(self, contents: Sequence[Content], todo: Sequence[int]) -> bool:
        """Whether preparing in workers can overlap anything.

        Text is tokenised holding the GIL, so text items that all fit in the first group (a
        query, a server's micro-batch) gain nothing from threads and pay the hand-offs: about
        1 ms per single-query call here. Media decoding releases the GIL, and later groups are
        prepared while the model runs.
        """
        if len(todo) <= 1:
            return False
        if len(todo) > self._group_limits()[0]:
            return True
        return any(contents[p].modalities != ("text",) for p in todo)

    def _prepare(self, content: Content, position: int) -> PreparedItem:
        index = self.spec.owner[position]
        require_modalities(self.backend, content, kind=self.spec.kind, index=index)
        return self.backend.prepare(content, kind=self.spec.kind, index=index)

    def _group_limits(self) -> tuple[int, int]:
        return GROUP_BATCHES * self.spec.batch_size, GROUP_BATCHES * self.spec.max_tokens

    def _next_group(
        self, backlog: deque[Outcome[int, PreparedItem]], feed: Prefetcher[int, PreparedItem]
    ) -> list[Ready]:
        """Prepared items up to the group limits: the backlog first, then waiting on the feed."""
        max_items, max_tokens = self._group_limits()
        group: list[Ready] = []
        tokens = 0
        while len(group) < max_items and tokens < max_tokens and (backlog or not feed.exhausted):
            ready = self._accept(backlog.popleft() if backlog else feed.take())
            if ready is not None:
                group.append(ready)
                tokens += ready[1].length
        return group

    def _accept(self, outcome: Outcome[int, PreparedItem]) -> Ready | None:
        """The prepared item, or the failure recorded (``skip``) or raised (``raise``)."""
        if outcome.error is None:
            assert outcome.value is not None
            return outcome.job, outcome.value
        if not isinstance(outcome.error, OmniInputError) or self.spec.errors == "raise":
            raise outcome.error
        self.spec.failures.append(ItemFailure.from_error(outcome.error))
        logger.warning("skipped %s", outcome.error)
        self._advance(1)
        return None

    def _embed_group(
        self,
        group: list[Ready],
        workers: Workers,
        feed: Prefetcher[int, PreparedItem],
        backlog: deque[Outcome[int, PreparedItem]],
    ) -> None:
        """Embed a group batch by batch, collating the next batch while the current one runs."""
        lengths = [item.length for _, item in group]
        cuts = length_sorted_batches(lengths, self.spec.batch_size, self.spec.max_tokens, packed=self.packed)
        batches = [[group[i] for i in cut] for cut in cuts]
        upcoming = self._collate_later(workers, batches[0]) if batches else None
        for number, batch in enumerate(batches):
            current = upcoming
            if number + 1 < len(batches):
                upcoming = self._collate_later(workers, batches[number + 1])
            collated = current.result() if current is not None else None
            for position, vector in self._embed_with_backoff(batch, collated):
                self.spec.out[position] = vector
            self._advance(len(batch))
            if len(backlog) < self._group_limits()[0]:
                backlog.extend(feed.poll())  # keep the workers busy while the model runs

    def _collate_later(self, workers: Workers, batch: list[Ready]) -> Future[Any] | None:
        if not self.collates:
            return None
        items = [item for _, item in batch]
        return workers.submit(lambda: self.backend.collate(items, kind=self.spec.kind))  # type: ignore[attr-defined]

    def _forward(self, batch: list[Ready], collated: Any) -> np.ndarray:
        items = [item for _, item in batch]
        if not self.collates:
            return self.backend.embed_prepared(items, kind=self.spec.kind)
        if collated is None:
            collated = self.backend.collate(items, kind=self.spec.kind)  # type: ignore[attr-defined]
        return self.backend.embed_collated(collated, kind=self.spec.kind)  # type: ignore[attr-defined]

    def _embed_with_backoff(self, batch: list[Ready], collated: Any = None) -> list[tuple[int, np.ndarray]]:
        """Embed a batch; out of memory splits it in halves, down to single items that fail alone."""
        try:
            vectors = self._forward(batch, collated)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            # keep only the message: the exception's traceback pins the failed pass's tensors
            cause = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        else:
            return [(position, vectors[row]) for row, (position, _) in enumerate(batch)]
        del collated
        release_cached_memory()
        if len(batch) == 1:
            self._too_large(batch[0], cause)
            return []
        tokens = sum(item.length for _, item in batch)
        logger.warning(
            "a batch of %d items (%d tokens) ran out of memory: retrying in halves", len(batch), tokens
        )
        half = len(batch) // 2
        return self._embed_with_backoff(batch[:half]) + self._embed_with_backoff(batch[half:])

    def _too_large(self, ready: Ready, cause: str) -> None:
        position, item = ready
        error = OmniInputError(
            f"out of memory embedding its {item.length} tokens on its own ({cause}); split the media "
            "into segments (start_s/end_s), lower its resolution or frame rate, or free accelerator memory",
            index=self.spec.owner[position],
            field="item",
        )
        if self.spec.errors == "raise":
            raise error
        self.spec.failures.append(ItemFailure.from_error(error))
        logger.warning("skipped %s", error)

    def _advance(self, n: int) -> None:
        if self.spec.progress is not None:
            self.spec.progress.update(n)
