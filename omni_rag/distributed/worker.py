"""The actor of the pool: one model copy, embedding chunks of planned points.

Chunks travel as pickled :class:`~omni_rag.indexing.PlannedPoint` lists and come back as pickled
:class:`ChunkOutcome` records in Arrow ``binary`` columns, so nothing is converted on the way
(Ray Data would otherwise turn arrays and objects into columns of its choosing).

Decoding and preprocessing run in the actor, through :func:`~omni_rag.indexing.embed_chunk`, the
very function a single-process add calls: vectors are the same because the code is the same, and
what crosses the network is a file path, not a minute of decoded frames (about 72 MB per segment).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omni_rag.distributed.options import ModelSpec
from omni_rag.errors import ItemFailure
from omni_rag.indexing import EmbeddedPoint, PlannedPoint, crash_reason, embed_chunk, model_info

if TYPE_CHECKING:
    import pyarrow

#: Test hook: ``N`` makes the first actor that finishes its N-th chunk die (``os._exit``) before
#: returning it, once per run, so tests can check that a lost worker loses nothing.
CRASH_AFTER_ENV = "OMNI_RAG_RAY_CRASH_AFTER"


@dataclass(frozen=True)
class CrashHook:
    """Where the test hook records that it fired (so only one actor dies, once)."""

    after: int
    marker: str

    def fire(self, calls: int) -> None:
        """Kill this process after ``after`` calls, unless an actor did already."""
        if calls < self.after:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)


@dataclass
class ChunkOutcome:
    """What an actor made of one chunk.

    Attributes:
        chunk: The chunk's position in the driver's list.
        model: :func:`~omni_rag.indexing.model_info` of the actor's model (checked by the driver).
        done: Points with their vectors.
        failures: Items the embedder refused (bad media), with the caller's item index.
        crash: ``"<type>: <message>"`` when embedding the chunk raised unexpectedly.
    """

    chunk: int
    model: dict[str, Any]
    done: list[EmbeddedPoint] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    crash: str | None = None


class ChunkEmbedder:
    """Ray Data callable class: loads the model once per actor, embeds one chunk per row.

    Args:
        spec: How to load the model.
        crash: The test hook, or ``None``.
    """

    def __init__(self, spec: ModelSpec, crash: CrashHook | None = None) -> None:
        from omni_rag.embedder import OmniEmbedder

        self.embedder = OmniEmbedder.from_pretrained(
            spec.name,
            device=spec.device,
            batch_size=spec.batch_size,
            trust_remote_code=spec.trust_remote_code,
        )
        self.model = model_info(self.embedder)
        self.crash = crash
        self.calls = 0

    def embed(self, chunk: int, points: list[PlannedPoint]) -> ChunkOutcome:
        """One chunk; an unexpected error fails this chunk's items, never the actor."""
        try:
            done, failures = embed_chunk(self.embedder, points, errors="skip")
        except Exception as error:  # a decoder or model crash must not take the other chunks down
            return ChunkOutcome(chunk, self.model, crash=crash_reason(error))
        return ChunkOutcome(chunk, self.model, done, failures)

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        import pyarrow as pa

        chunks = batch.column("chunk").to_pylist()
        tasks = batch.column("task").to_pylist()
        outcomes = [pickle.dumps(self.embed(c, pickle.loads(t))) for c, t in zip(chunks, tasks, strict=True)]
        self.calls += 1
        if self.crash is not None:
            self.crash.fire(self.calls)
        return pa.table({"chunk": pa.array(chunks, pa.int64()), "outcome": pa.array(outcomes, pa.binary())})
