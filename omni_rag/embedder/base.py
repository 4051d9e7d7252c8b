"""What every model backend implements, and what the embedder returns.

The :class:`~omni_rag.embedder.OmniEmbedder` owns everything that is the same
for every model (coercing inputs, error policy, streams, length-sorted
batching); a backend owns only what is model-specific: turning one item into
model inputs (``prepare``) and a batch of prepared items into vectors
(``embed_prepared``). A third model is one new module implementing this.

Optional, for throughput (see :mod:`omni_rag.embedder.runner`): ``parallel_prepare = True`` lets
``prepare`` run in background threads while the model runs; ``collate(items, kind=)`` (CPU,
thread-safe) plus ``embed_collated(batch, kind=)`` let the next batch be assembled (and pinned)
while the current one runs; ``packed = True`` makes the token budget count real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np

from omni_rag.content import Content
from omni_rag.errors import ItemFailure, OmniInputError

Kind = Literal["query", "document"]
ErrorPolicy = Literal["raise", "skip"]

#: Stream names, one named vector each in the store.


@dataclass
class PreparedItem:
    """One item turned into model inputs, with its length for sorting and budgeting."""

    length: int
    inputs: Any


@runtime_checkable
class EmbeddingBackend(Protocol):
    """A model behind the :class:`OmniEmbedder` API."""

    model_id: str
    revision: str | None
    dim: int
    #: Modalities the backend accepts, per kind of input.
    query_modalities: frozenset[str]
    document_modalities: frozenset[str]

    def prepare(self, item: Content, *, kind: Kind, index: int) -> PreparedItem:
        """Decode media and build model inputs for one item.

        Raises:
            OmniInputError: naming ``index``, the field and the reason.
        """
        ...

    def embed_prepared(self, items: Sequence[PreparedItem], *, kind: Kind) -> np.ndarray:
        """Run the model on a batch; returns float32 ``(len(items), dim)`` L2-normalised rows."""
        ...


def require_modalities(backend: EmbeddingBackend, item: Content, *, kind: Kind, index: int) -> None:
    """Refuse what a backend cannot embed, naming what it can: never a silent fallback.

    Raises:
        OmniInputError: naming the item, the unsupported field and the supported modalities.
    """
    allowed = backend.query_modalities if kind == "query" else backend.document_modalities
    for name in item.modalities:
        if name not in allowed:
            supported = ", ".join(sorted(allowed))
            raise OmniInputError(
                f"{backend.model_id} does not embed {name} {kind}s (supported: {supported})",
                index=index,
                field=name,
            )


def split_streams(item: Content) -> dict[str, Content]:
    """The streams an item is stored as, one vector each.

    The rule, from the paper's "Audio+Video Separately" finding:

    - ``text``: the item's text, together with its image when it has both (a caption
      and its picture are one thought);
    - ``image``: the image, when the item has no text;
    - ``audio``: the audio alone;
    - ``video``: the video frames alone, never interleaved with the audio.
    """
    streams: dict[str, Content] = {}
    if item.text is not None:
        streams["text"] = item.with_only("text", "image")
    elif item.image is not None:
        streams["image"] = item.with_only("image")
    if item.audio is not None:
        streams["audio"] = item.with_only("audio")
    if item.video is not None:
        streams["video"] = item.with_only("video")
    return streams


T = TypeVar("T")


@dataclass
class EmbedResult(Generic[T]):
    """Embeddings under ``errors="skip"``: aligned with the input, failures listed.

    Attributes:
        embeddings: One entry per input item; ``None`` where the item failed.
        failures: Why each failed item failed, in input order.
    """

    embeddings: list[T | None]
    failures: list[ItemFailure] = field(default_factory=list)

    @property
    def ok_indices(self) -> list[int]:
        """Indices of the items that were embedded."""
        return [i for i, e in enumerate(self.embeddings) if e is not None]

    def __len__(self) -> int:
        return len(self.embeddings)
