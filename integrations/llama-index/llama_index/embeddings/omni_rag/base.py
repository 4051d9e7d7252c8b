"""``OmniEmbedding``: Omni-Embed-Nemotron as a LlamaIndex multi-modal embedding model.

A thin layer over :class:`omni_rag.OmniEmbedder`: it translates LlamaIndex's calls (text,
queries, images) into ``embed_documents`` / ``embed_queries`` and returns plain lists of
floats. The model is loaded once, when the object is built, unless an existing embedder is
passed with ``embedder=`` (then the two share one model in memory).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Any

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.schema import ImageType
from PIL import Image

from omni_rag import Content, OmniEmbedder
from omni_rag.content import AudioInput, VideoInput, require_list
from omni_rag.embedder import DEFAULT_MODEL
from omni_rag.embedder.shared import load_or_share_embedder, renamed_option

DEFAULT_OMNI_BATCH_SIZE = 8
"""Items per forward pass: a 3B model on one GPU, not an API; LlamaIndex's default (10) is close."""


def to_image_input(image: ImageType | Image.Image | os.PathLike[str] | bytes) -> Any:
    """What :class:`omni_rag.Content` accepts for an image, from any LlamaIndex ``ImageType``.

    Paths and URLs pass through (omni-rag decodes them); in-memory bytes become a ``PIL.Image``.
    """
    if isinstance(image, (str, os.PathLike, Image.Image)):
        return image
    if isinstance(image, bytes):
        image = BytesIO(image)
    if isinstance(image, BytesIO):
        image.seek(0)
        with Image.open(image) as opened:
            return opened.convert("RGB")
    raise TypeError(f"unsupported image type {type(image).__name__}: pass a path, URL, BytesIO or PIL image")


def _timed(field: str, source: Any, start_s: float | None, end_s: float | None) -> Content:
    return Content(**{field: source}, start_s=start_s, end_s=end_s)


class OmniEmbedding(MultiModalEmbedding):
    """Omni-Embed-Nemotron embeddings for LlamaIndex: text, images, audio and video in one space.

    Texts (nodes being indexed) get the model's document prompt, queries its query prompt, so
    ``get_text_embedding`` and ``get_query_embedding`` of the same string differ on purpose.
    Images, audio and video are embedded as documents, i.e. as what you index; to *search* with
    an image (or audio, or video) use :class:`llama_index.retrievers.omni_rag.OmniRetriever`,
    which embeds it with the query prompt.

    Examples:
        >>> from llama_index.core import Settings
        >>> from llama_index.embeddings.omni_rag import OmniEmbedding
        >>> Settings.embed_model = OmniEmbedding()  # nvidia/omni-embed-nemotron-3b

    Args:
        model_name: Hub id or local folder of the checkpoint. Ignored for loading when
            ``embedder`` is given (it then defaults to that embedder's ``model_id``).
        device: ``"cuda"``, ``"cpu"``...; default CUDA when available.
        embed_batch_size: Items per forward pass (and per LlamaIndex batch).
        embedder: An already loaded :class:`omni_rag.OmniEmbedder` to share instead of loading.
        trust_remote_code: Needed ``True`` for unofficial checkpoints that ship code.
        revision: Hub revision (official ids default to a pinned one).
        dtype: Default bf16 on CUDA, fp32 on CPU.
        model_kwargs: Other :meth:`omni_rag.OmniEmbedder.from_pretrained` options (the name
            ``embedder_kwargs`` still works, with a deprecation warning).
        callback_manager: LlamaIndex callbacks.
    """

    device: str | None = Field(default=None, description="Device the model runs on (None: auto).")
    trust_remote_code: bool | None = Field(
        default=None, description="Allow code shipped with the checkpoint."
    )
    revision: str | None = Field(default=None, description="Hub revision of the checkpoint.")
    dtype: str | None = Field(default=None, description="Torch dtype name (None: bf16 on CUDA, fp32 on CPU).")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments of OmniEmbedder.from_pretrained."
    )

    _embedder: OmniEmbedder = PrivateAttr()

    def __init__(
        self,
        model_name: str | None = None,
        device: str | None = None,
        embed_batch_size: int = DEFAULT_OMNI_BATCH_SIZE,
        embedder: OmniEmbedder | None = None,
        trust_remote_code: bool | None = None,
        revision: str | None = None,
        dtype: str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        embedder_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if model_name is None:
            model_name = embedder.model_id if embedder is not None else DEFAULT_MODEL
        fields: dict[str, Any] = {
            "model_name": model_name,
            "device": device,
            "embed_batch_size": embed_batch_size,
            "trust_remote_code": trust_remote_code,
            "revision": revision,
            "dtype": dtype,
            "model_kwargs": renamed_option(embedder_kwargs, model_kwargs, owner="OmniEmbedding"),
            "callback_manager": callback_manager,
        }
        super().__init__(**fields, **kwargs)
        self._embedder = load_or_share_embedder(
            embedder,
            model_name,
            device=device,
            dtype=dtype,
            revision=revision,
            trust_remote_code=trust_remote_code,
            batch_size=self.embed_batch_size,
            model_kwargs=self.model_kwargs,
        )

    @classmethod
    def class_name(cls) -> str:
        return "OmniEmbedding"

    @property
    def embedder(self) -> OmniEmbedder:
        """The shared :class:`omni_rag.OmniEmbedder` (pass it to other adapters or the retriever)."""
        return self._embedder

    # -- generic helpers --------------------------------------------------------------------------

    def _documents(self, items: Sequence[Any]) -> list[Embedding]:
        if not items:
            return []
        vectors = self._embedder.embed_documents(list(items), batch_size=self.embed_batch_size)
        return [row.tolist() for row in vectors]

    def _queries(self, items: Sequence[Any]) -> list[Embedding]:
        if not items:
            return []
        vectors = self._embedder.embed_queries(list(items), batch_size=self.embed_batch_size)
        return [row.tolist() for row in vectors]

    # -- text (LlamaIndex's abstract API) -----------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._queries([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._documents([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        require_list(texts, "texts", "texts")
        return self._documents(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    # -- images -----------------------------------------------------------------------------------

    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return self._documents([{"image": to_image_input(img_file_path)}])[0]

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return await asyncio.to_thread(self._get_image_embedding, img_file_path)

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        require_list(img_file_paths, "img_file_paths", "images")
        return self._documents([{"image": to_image_input(image)} for image in img_file_paths])

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_image_embeddings, img_file_paths)

    # -- audio and video (beyond LlamaIndex's interface) ------------------------------------------

    def get_audio_embedding(
        self, audio: AudioInput, start_s: float | None = None, end_s: float | None = None
    ) -> Embedding:
        """Embed one audio source as a document.

        Args:
            audio: Path or URL of any file with an audio track, or a 1-D float waveform at 16 kHz.
            start_s: Start of the window in seconds (``None``: from the start).
            end_s: End of the window in seconds (``None``: to the end).
        """
        return self._documents([_timed("audio", audio, start_s, end_s)])[0]

    def get_audio_embeddings(self, audios: Sequence[AudioInput]) -> list[Embedding]:
        """Embed several audio sources as documents, batched."""
        require_list(audios, "audios", "audio sources")
        return self._documents([{"audio": audio} for audio in audios])

    async def aget_audio_embedding(
        self, audio: AudioInput, start_s: float | None = None, end_s: float | None = None
    ) -> Embedding:
        """:meth:`get_audio_embedding` off the event loop."""
        return await asyncio.to_thread(self.get_audio_embedding, audio, start_s, end_s)

    async def aget_audio_embeddings(self, audios: Sequence[AudioInput]) -> list[Embedding]:
        """:meth:`get_audio_embeddings` off the event loop."""
        return await asyncio.to_thread(self.get_audio_embeddings, audios)

    def get_video_embedding(
        self, video: VideoInput, start_s: float | None = None, end_s: float | None = None
    ) -> Embedding:
        """Embed the frames of one video as a document (its audio track is not included).

        The paper scores a video's frames and its audio separately and fuses late; index videos
        with :class:`omni_rag.retriever.OmniRetriever` to get both streams and that fusion.

        Args:
            video: Path or URL, or frames as an array ``(T, H, W, 3)`` uint8.
            start_s: Start of the window in seconds (``None``: from the start).
            end_s: End of the window in seconds (``None``: to the end).
        """
        return self._documents([_timed("video", video, start_s, end_s)])[0]

    def get_video_embeddings(self, videos: Sequence[VideoInput]) -> list[Embedding]:
        """Embed the frames of several videos as documents, batched."""
        require_list(videos, "videos", "videos")
        return self._documents([{"video": video} for video in videos])

    async def aget_video_embedding(
        self, video: VideoInput, start_s: float | None = None, end_s: float | None = None
    ) -> Embedding:
        """:meth:`get_video_embedding` off the event loop."""
        return await asyncio.to_thread(self.get_video_embedding, video, start_s, end_s)

    async def aget_video_embeddings(self, videos: Sequence[VideoInput]) -> list[Embedding]:
        """:meth:`get_video_embeddings` off the event loop."""
        return await asyncio.to_thread(self.get_video_embeddings, videos)
