"""``OmniEmbedder``: the one embedding API the store, retriever, adapters and CLI call."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np
import torch
from tqdm import tqdm

from omni_rag.content import Content, ItemLike, as_content, require_list
from omni_rag.deprecation import renamed
from omni_rag.embedder.base import EmbeddingBackend, EmbedResult, ErrorPolicy, Kind, split_streams
from omni_rag.embedder.budget import default_tokens_per_batch
from omni_rag.embedder.loading import DEFAULT_MODEL, resolve_load_options
from omni_rag.embedder.pipeline import PrepPool, default_num_workers
from omni_rag.embedder.registry import select_backend
from omni_rag.embedder.runner import BatchRunner, RunSpec
from omni_rag.errors import ItemFailure, OmniInputError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class OmniEmbedder:
    """Embeds text, images, audio and video, alone or mixed, into one space.

    Build it with :meth:`from_pretrained`; queries and documents get the model's
    ``"query: "`` / ``"passage: "`` prompts. ``embed_document_streams`` embeds an
    item's audio and video separately, for late fusion in the store.

    Items are prepared (media decoded, features, tokens) by ``num_workers`` background threads
    a few batches ahead of the model, sorted by length and cut into batches by a token budget.
    A batch that runs out of GPU memory is split in halves and retried; an item that does not
    fit on its own fails alone (see ``errors``), never the others.

    Args:
        backend: The model behind the API (see :mod:`omni_rag.embedder.base`).
        batch_size: Most items per forward pass (the token budget usually cuts first).
        max_tokens_per_batch: Tokens per forward pass (text, visual and audio positions;
            padded ones count on the padded path). Default: from free GPU memory on CUDA
            (:mod:`omni_rag.embedder.budget`), 16,384 on the CPU.
        num_workers: Preparation threads; ``1`` prepares in the calling thread. Default
            ``min(4, cpu count)``.
        show_progress_bar: Default of the embed calls' ``show_progress_bar``; ``None`` shows
            one when this module's logger is at INFO or DEBUG (sentence-transformers' rule).
        max_batch_tokens: Deprecated name of ``max_tokens_per_batch``.
    """

    def __init__(
        self,
        backend: EmbeddingBackend,
        *,
        batch_size: int = 32,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        show_progress_bar: bool | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.backend = backend
        self.batch_size = batch_size
        budget = renamed(
            max_batch_tokens,
            max_tokens_per_batch,
            old="max_batch_tokens",
            new="max_tokens_per_batch",
            owner="OmniEmbedder",
        )
        self.max_tokens_per_batch: int = budget if budget is not None else default_tokens_per_batch(backend)
        self.num_workers: int = default_num_workers() if num_workers is None else max(1, num_workers)
        self.show_progress_bar = show_progress_bar
        self._prep_pool = PrepPool()

    @property
    def max_batch_tokens(self) -> int:
        """Deprecated name of :attr:`max_tokens_per_batch`."""
        return self.max_tokens_per_batch

    @max_batch_tokens.setter
    def max_batch_tokens(self, value: int) -> None:
        self.max_tokens_per_batch = value

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
        batch_size: int = 32,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        show_progress_bar: bool | None = None,
        max_batch_tokens: int | None = None,
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
            batch_size, max_tokens_per_batch, num_workers, show_progress_bar, max_batch_tokens:
                As in the class (the budget's default is measured after the model is loaded).
            **kwargs: Backend options: ``prompts``, ``truncate``, ``videos_kwargs``,
                ``video_options``, ``packing``, ``bidirectional``, ``model_kwargs`` (passed to
                ``AutoModel.from_pretrained``).
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
        return cls(
            backend,
            batch_size=batch_size,
            max_tokens_per_batch=max_tokens_per_batch,
            num_workers=num_workers,
            show_progress_bar=show_progress_bar,
            max_batch_tokens=max_batch_tokens,
        )

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
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = ...,
        errors: Literal["raise"] = ...,
        show_progress_bar: bool | None = ...,
    ) -> np.ndarray: ...

    @overload
    def embed_queries(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = ...,
        errors: Literal["skip"],
        show_progress_bar: bool | None = ...,
    ) -> EmbedResult[np.ndarray]: ...

    def embed_queries(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = None,
        errors: ErrorPolicy = "raise",
        show_progress_bar: bool | None = None,
    ) -> np.ndarray | EmbedResult[np.ndarray]:
        """Embed queries (``"query: "`` prompt).

        Returns:
            float32 ``(n, dim)``, L2-normalised; with ``errors="skip"``, an :class:`EmbedResult`
            aligned with the input whose failed entries are ``None`` and listed in ``failures``.
        """
        return self._embed_matrix(items, "query", batch_size, errors, show_progress_bar)

    @overload
    def embed_documents(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = ...,
        errors: Literal["raise"] = ...,
        show_progress_bar: bool | None = ...,
    ) -> np.ndarray: ...

    @overload
    def embed_documents(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = ...,
        errors: Literal["skip"],
        show_progress_bar: bool | None = ...,
    ) -> EmbedResult[np.ndarray]: ...

    def embed_documents(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = None,
        errors: ErrorPolicy = "raise",
        show_progress_bar: bool | None = None,
    ) -> np.ndarray | EmbedResult[np.ndarray]:
        """Embed documents (``"passage: "`` prompt), every modality of an item in one sequence."""
        return self._embed_matrix(items, "document", batch_size, errors, show_progress_bar)

    @overload
    def embed_document_streams(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = ...,
        errors: Literal["raise"] = ...,
        show_progress_bar: bool | None = ...,
    ) -> list[dict[str, np.ndarray]]: ...

    @overload
    def embed_document_streams(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = ...,
        errors: Literal["skip"],
        show_progress_bar: bool | None = ...,
    ) -> EmbedResult[dict[str, np.ndarray]]: ...

    def embed_document_streams(
        self,
        items: Iterable[ItemLike],
        *,
        batch_size: int | None = None,
        errors: ErrorPolicy = "raise",
        show_progress_bar: bool | None = None,
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
        vectors = self._run(
            flat,
            "document",
            batch_size,
            errors,
            failures,
            owner=[i for i, _ in owners],
            progress=show_progress_bar,
        )
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
        self,
        items: Iterable[ItemLike],
        kind: Kind,
        batch_size: int | None,
        errors: ErrorPolicy,
        progress: bool | None,
    ) -> np.ndarray | EmbedResult[np.ndarray]:
        contents, failures = self._coerce(items, errors)
        present = [i for i, c in enumerate(contents) if c is not None]
        kept = [c for c in contents if c is not None]
        vectors = self._run(kept, kind, batch_size, errors, failures, owner=present, progress=progress)
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
        require_list(items)
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
        progress: bool | None = None,
    ) -> list[np.ndarray | None]:
        """Prepare in workers, embed in length-sorted token-budget batches (see :mod:`.runner`)."""
        spec = RunSpec(
            kind=kind,
            batch_size=batch_size or self.batch_size,
            max_tokens=self.max_tokens_per_batch,
            errors=errors,
            owner=owner,
            failures=failures,
        )
        with tqdm(
            total=len(contents),
            desc="embedding",
            unit="item",
            file=sys.stderr,
            disable=not self._show(progress),
        ) as bar:
            spec.progress = bar
            pool = self._prep_pool.get(self.num_workers)
            return BatchRunner(self.backend, spec, self.num_workers, pool).run(contents)

    def _show(self, progress: bool | None) -> bool:
        """The call's choice, else the embedder's, else on at INFO/DEBUG logging (sentence-transformers)."""
        if progress is None:
            progress = self.show_progress_bar
        if progress is None:
            return logger.getEffectiveLevel() <= logging.INFO
        return progress

    @staticmethod
    def _finish(result: list[T | None], failures: list[ItemFailure], errors: ErrorPolicy) -> Any:
        if errors == "raise":
            return result
        failures.sort(key=lambda f: f.index)
        return EmbedResult(embeddings=result, failures=failures)
