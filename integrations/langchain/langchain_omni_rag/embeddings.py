"""``OmniEmbeddings``: Omni-Embed-Nemotron as LangChain ``Embeddings``, plus image, audio and video."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, model_validator

from omni_rag.content import require_list
from omni_rag.embedder import DEFAULT_MODEL, OmniEmbedder
from omni_rag.embedder.shared import load_or_share_embedder

PathLike = str | os.PathLike[str]


class OmniEmbeddings(BaseModel, Embeddings):
    """Omni-Embed-Nemotron embeddings: text, images, audio and video in one vector space.

    ``embed_documents`` uses the model's document prompt and ``embed_query`` its query prompt,
    as retrieval models expect. Media are embedded as documents (what you index).

    The model loads when the object is built, unless an :class:`omni_rag.OmniEmbedder` is
    passed as ``embedder``: then nothing loads and both share one model in memory.

    Examples:
        >>> from langchain_omni_rag import OmniEmbeddings
        >>> embeddings = OmniEmbeddings(device="cuda")
        >>> embeddings.embed_query("how long do I bake bread?")[:3]
        >>> embeddings.embed_video(["talk.mp4"])

    Args:
        model_name: Hub id or local folder of the checkpoint.
        device: ``"cuda"``, ``"cpu"``...; ``None`` picks CUDA when available.
        batch_size: Items per forward pass.
        trust_remote_code: Needed ``True`` for unofficial checkpoints that ship code.
        revision: Hub revision (official ids default to a pinned one).
        dtype: Torch dtype name; ``None`` means bf16 on CUDA, fp32 on CPU.
        model_kwargs: Other :meth:`omni_rag.OmniEmbedder.from_pretrained` options.
        embedder: An already loaded embedder to share instead of loading ``model_name``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", protected_namespaces=())

    model_name: str = DEFAULT_MODEL
    device: str | None = None
    batch_size: int = Field(default=8, gt=0)
    trust_remote_code: bool | None = None
    revision: str | None = None
    dtype: str | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    embedder: OmniEmbedder | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="after")
    def _load(self) -> OmniEmbeddings:
        if self.embedder is None:
            self.embedder = load_or_share_embedder(
                None,
                self.model_name,
                device=self.device,
                dtype=self.dtype,
                revision=self.revision,
                trust_remote_code=self.trust_remote_code,
                batch_size=self.batch_size,
                model_kwargs=self.model_kwargs,
            )
        elif "model_name" not in self.model_fields_set:
            self.model_name = self.embedder.model_id
        return self

    @property
    def _model(self) -> OmniEmbedder:
        assert self.embedder is not None, "set by the validator"
        return self.embedder

    def _documents(self, items: Sequence[Any]) -> list[list[float]]:
        if not items:
            return []
        return self._model.embed_documents(list(items), batch_size=self.batch_size).tolist()

    # -- LangChain's Embeddings interface ---------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to index, with the document prompt.

        Args:
            texts: The texts.

        Returns:
            One L2-normalised vector per text.
        """
        require_list(texts, "texts", "texts")
        return self._documents(texts)

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query, with the query prompt.

        Args:
            text: The query.

        Returns:
            An L2-normalised vector.
        """
        return self._model.embed_queries([text])[0].tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """:meth:`embed_documents` in a worker thread, keeping the event loop free."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """:meth:`embed_query` in a worker thread, keeping the event loop free."""
        return await asyncio.to_thread(self.embed_query, text)

    # -- media ------------------------------------------------------------------------------------

    def embed_image(self, uris: Sequence[PathLike]) -> list[list[float]]:
        """Embed images (paths or URLs) as documents.

        Args:
            uris: Image files or URLs.

        Returns:
            One vector per image.
        """
        require_list(uris, "uris", "paths or URLs")
        return self._documents([{"image": uri} for uri in uris])

    def embed_audio(self, uris: Sequence[PathLike]) -> list[list[float]]:
        """Embed audio (paths or URLs of any file with an audio track) as documents.

        Args:
            uris: Audio or video files, or URLs.

        Returns:
            One vector per audio track.
        """
        require_list(uris, "uris", "paths or URLs")
        return self._documents([{"audio": uri} for uri in uris])

    def embed_video(self, uris: Sequence[PathLike]) -> list[list[float]]:
        """Embed the frames of videos (paths or URLs) as documents; audio tracks are left out.

        omni-rag scores a video's frames and its audio separately and fuses them late; use
        :class:`omni_rag.retriever.OmniRetriever` (and :class:`OmniRetriever`) for that.

        Args:
            uris: Video files or URLs.

        Returns:
            One vector per video.
        """
        require_list(uris, "uris", "paths or URLs")
        return self._documents([{"video": uri} for uri in uris])
