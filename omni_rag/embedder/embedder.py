"""``OmniEmbedder``: the one embedding API the store, retriever, adapters and CLI call."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np
import torch

from omni_rag.content import Content, ItemLike, as_content
from omni_rag.embedder.base import (
    EmbeddingBackend,
    EmbedResult,
    ErrorPolicy,
    Kind,
    PreparedItem,
    require_modalities,
    split_streams,
)
from omni_rag.embedder.batching import length_sorted_batches
from omni_rag.embedder.loading import DEFAULT_MODEL, resolve_load_options
from omni_rag.embedder.registry import select_backend
from omni_rag.errors import ItemFailure, OmniInputError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Items prepared (media decoded) at a time: bounds memory while keeping batches sorted.
CHUNK_BATCHES = 8


class OmniEmbedder:
    """Embeds text, images, audio and video, alone or mixed, into one space.

    Build it with :meth:`from_pretrained`; queries and documents get the model's
    ``"query: "`` / ``"passage: "`` prompts. ``embed_document_streams`` embeds an
    item's audio and video separately, for late fusion in the store.

    Args:
        backend: The model behind the API (see :mod:`omni_rag.embedder.base`).
        batch_size: Items per forward pass.
        max_batch_tokens: Padded tokens per forward pass; long videos get smaller batches.
    """

    def __init__(
        self, backend: EmbeddingBackend, *, batch_size: int = 8, max_batch_tokens: int = 65536
    ) -> None:
        self.backend = backend
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        attn_implementation: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool | None = None,
        batch_size: int = 8,
        max_batch_tokens: int = 65536,
        **kwargs: Any,
    ) -> OmniEmbedder:
        """Load a checkpoint and pick the backend from its config.

        Args:
            name_or_path: Hub id or local folder.
            device: Default CUDA when available, else CPU.
            dtype: Default bf16 on CUDA, fp32 on CPU.
            attn_implementation: Default ``flash_attention_2`` when installed on CUDA, else ``sdpa``.
            revision: Hub revision; official ids default to a pinned one.
            trust_remote_code: Required ``True`` for checkpoints that ship code, except the
                pinned official ids, which are trusted at their pinned revision.
            batch_size: Items per forward pass.
            max_batch_tokens: Padded tokens per forward pass.
            **kwargs: Backend options: ``prompts``, ``truncate``, ``videos_kwargs``,
                ``video_options``, ``model_kwargs`` (passed to ``AutoModel.from_pretrained``).
        """
        options = resolve_load_options(
            name_or_path,
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            revision=revision,
            trust_remote_code=trust_remote_code,
            native_ok=lambda config: select_backend(config, os.fspath(name_or_path)).loads_natively(config),
        )
        if options.device.type == "cpu" and device is None:
            logger.warning("No GPU found: running on the CPU, which is slow for billion-parameter models.")
        backend = select_backend(options.config, options.name_or_path).load(options, **kwargs)
        return cls(backend, batch_size=batch_size, max_batch_tokens=max_batch_tokens)

    # -- facts about the model --------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Embedding dimension (2048 for Omni-Embed-Nemotron-3B)."""
        return self.backend.dim

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    @property
    def revision(self) -> str | None:
        return self.backend.revision

    # -- the API ----------------------------------------------------------------------------------

    @overload
    def embed_queries(
        self, items: Iterable[ItemLike], *, batch_size: int | None = ..., errors: Literal["raise"] = ...
    ) -> np.ndarray: ...

    @overload
    def embed_queries(
        self, items: Iterable[ItemLike], *, batch_size: int | None = ..., errors: Literal["skip"]
    ) -> EmbedResult[np.ndarray]: ...

    def embed_queries(
        self, items: Iterable[ItemLike], *, batch_size: int | None = None, errors: ErrorPolicy = "raise"
    ) -> np.ndarray | EmbedResult[np.ndarray]:
        """Embed queries (``"query: "`` prompt).

        Returns:
            float32 ``(n, dim)``, L2-normalised; with ``errors="skip"``, an :class:`EmbedResult`
            aligned with the input whose failed entries are ``None`` and listed in ``failures``.
        """
        return self._embed_matrix(items, "query", batch_size, errors)

    @overload
    def embed_documents(
        self, items: Iterable[ItemLike], *, batch_size: int | None = ..., errors: Literal["raise"] = ...
    ) -> np.ndarray: ...

    @overload
    def embed_documents(
        self, items: Iterable[ItemLike], *, batch_size: int | None = ..., errors: Literal["skip"]
    ) -> EmbedResult[np.ndarray]: ...

    def embed_documents(
        self, items: Iterable[ItemLike], *, batch_size: int | None = None, errors: ErrorPolicy = "raise"
    ) -> np.ndarray | EmbedResult[np.ndarray]:
        """Embed documents (``"passage: "`` prompt), every modality of an item in one sequence."""
        return self._embed_matrix(items, "document", batch_size, errors)

    @overload
    def embed_document_streams(
        self, items: Iterable[ItemLike], *, batch_size: int | None = ..., errors: Literal["raise"] = ...
    ) -> list[dict[str, np.ndarray]]: ...

    @overload
    def embed_document_streams(
        self, items: Iterable[ItemLike], *, batch_size: int | None = ..., errors: Literal["skip"]
    ) -> EmbedResult[dict[str, np.ndarray]]: ...

    def embed_document_streams(
        self, items: Iterable[ItemLike], *, batch_size: int | None = None, errors: ErrorPolicy = "raise"
    ) -> list[dict[str, np.ndarray]] | EmbedResult[dict[str, np.ndarray]]:
        """Embed each item as separate streams, one vector each (see :func:`split_streams`).

        An item's audio and video are embedded independently, each alone with the
        prompt: the paper's "Audio+Video Separately", which the store fuses late.
        """
        contents, failures = self._coerce(items, errors)
        flat: list[Content] = []
        owners: list[tuple[int, str]] = []
        for index, content in enumerate(contents):
            if content is None:
                continue
            for stream, part in split_streams(content).items():
                flat.append(part)
                owners.append((index, stream))
        vectors = self._run(flat, "document", batch_size, errors, failures, owner=[i for i, _ in owners])
        result: list[dict[str, np.ndarray] | None] = [None if c is None else {} for c in contents]
        failed = {f.index for f in failures}
        for (index, stream), vector in zip(owners, vectors, strict=True):
            if index in failed or vector is None:
                result[index] = None
            else:
                entry = result[index]
                assert entry is not None
                entry[stream] = vector
        return self._finish(result, failures, errors)

    # -- machinery ----------------------------------------------------------------------------------

    def _embed_matrix(
        self, items: Iterable[ItemLike], kind: Kind, batch_size: int | None, errors: ErrorPolicy
    ) -> np.ndarray | EmbedResult[np.ndarray]:
        contents, failures = self._coerce(items, errors)
        present = [i for i, c in enumerate(contents) if c is not None]
        kept = [c for c in contents if c is not None]
        vectors = self._run(kept, kind, batch_size, errors, failures, owner=present)
        result: list[np.ndarray | None] = [None] * len(contents)
        for index, vector in zip(present, vectors, strict=True):
            result[index] = vector
        if errors == "raise":
            return np.stack(result) if result else np.zeros((0, self.dim), dtype=np.float32)  # type: ignore[arg-type]
        return self._finish(result, failures, errors)

    def _coerce(
        self, items: Iterable[ItemLike], errors: ErrorPolicy
    ) -> tuple[list[Content | None], list[ItemFailure]]:
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if isinstance(items, (str, Content)):
            raise TypeError("pass a list of items, not a single item")
        contents: list[Content | None] = []
        failures: list[ItemFailure] = []
        for index, item in enumerate(items):
            try:
                contents.append(as_content(item, index))
            except OmniInputError as error:
                if errors == "raise":
                    raise
                contents.append(None)
                failures.append(ItemFailure.from_error(error))
        return contents, failures

    def _run(
        self,
        contents: Sequence[Content],
        kind: Kind,
        batch_size: int | None,
        errors: ErrorPolicy,
        failures: list[ItemFailure],
        *,
        owner: Sequence[int],
    ) -> list[np.ndarray | None]:
        """Prepare in chunks, embed in length-sorted batches; failures recorded against ``owner``."""
        size = batch_size or self.batch_size
        out: list[np.ndarray | None] = [None] * len(contents)
        chunk = size * CHUNK_BATCHES
        for start in range(0, len(contents), chunk):
            prepared: list[tuple[int, PreparedItem]] = []
            for offset, content in enumerate(contents[start : start + chunk]):
                position = start + offset
                index = owner[position]
                if any(f.index == index for f in failures):
                    continue
                try:
                    require_modalities(self.backend, content, kind=kind, index=index)
                    prepared.append((position, self.backend.prepare(content, kind=kind, index=index)))
                except OmniInputError as error:
                    if errors == "raise":
                        raise
                    failures.append(ItemFailure.from_error(error))
                    logger.warning("skipped %s", error)
            lengths = [p.length for _, p in prepared]
            for batch in length_sorted_batches(lengths, size, self.max_batch_tokens):
                vectors = self.backend.embed_prepared([prepared[i][1] for i in batch], kind=kind)
                for row, i in enumerate(batch):
                    out[prepared[i][0]] = vectors[row]
        return out

    @staticmethod
    def _finish(result: list[T | None], failures: list[ItemFailure], errors: ErrorPolicy) -> Any:
        if errors == "raise":
            return result
        failures.sort(key=lambda f: f.index)
        return EmbedResult(embeddings=result, failures=failures)
