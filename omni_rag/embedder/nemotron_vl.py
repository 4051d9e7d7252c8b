"""llama-nemotron-embed-vl-1b-v2 as an embedding backend: text queries; text, image and image+text documents.

The checkpoint ships its own code (a SigLIP2 tower feeding a bidirectional Llama 3.2 1B, mean-pooled to
2048 dimensions). Instead of re-implementing its tiling and prompts, this backend calls the model's *own*
``encode_queries`` / ``encode_documents(images=..., texts=...)`` exactly as the model card does, with the
card's processor settings, so vectors match what NVIDIA evaluated:

* ``processor.p_max_length`` is set per document modality before each call: 8192 for text, 2048 for an
  image, 10240 for image+text (the card's table). A batch mixing modalities is therefore split into one
  call per modality, and the rows are put back in input order.
* ``processor.max_input_tiles = 6`` and ``processor.use_thumbnail = True`` (six tiles plus a thumbnail,
  about 1792 visual tokens).
* The card loads in bfloat16 with ``flash_attention_2``; :mod:`omni_rag.embedder.loading` picks the same
  on CUDA (SDPA without flash-attn, float32 on CPU).
* The model returns un-normalised mean-pooled states and the card L2-normalises them; so does this
  backend, in float32.

The model embeds no audio or video and takes only text queries: :attr:`NemotronVLBackend.query_modalities`
and :attr:`~NemotronVLBackend.document_modalities` say so, and such inputs raise ``OmniInputError`` naming
the supported modalities instead of being dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from omni_rag.content import Content
from omni_rag.embedder.base import Kind, PreparedItem, require_modalities
from omni_rag.embedder.loading import LoadOptions
from omni_rag.errors import MediaError, OmniInputError

Modality = Literal["text", "image", "image_text"]

#: ``model_type`` of the real checkpoint (``llama_nemotron_vl_rerank`` is the reranker; not an embedder).
MODEL_TYPE = "llama_nemotron_vl"
#: The embedding model class, named in ``architectures`` and ``auto_map["AutoModel"]``.
ARCHITECTURE = "LlamaNemotronVLModel"

#: The model card's ``p_max_length`` per document modality.
DEFAULT_P_MAX_LENGTH: dict[str, int] = {"text": 8192, "image": 2048, "image_text": 10240}
#: The model card's tiling: up to 6 tiles of 256 tokens each, plus a low-resolution thumbnail.
DEFAULT_MAX_INPUT_TILES = 6
DEFAULT_USE_THUMBNAIL = True
#: Visual tokens per tile in the real model; used only when the model does not report its own.
TOKENS_PER_TILE = 256


def accepts(config: Mapping[str, Any]) -> bool:
    """Whether ``config.json`` is llama-nemotron-embed-vl's: its model type *and* its embedding class.

    Both are required, so the reranker (``llama_nemotron_vl_rerank``, a sequence classifier) and any
    other checkpoint reusing the model type for another class are not taken for this embedder.
    """
    if config.get("model_type") != MODEL_TYPE:
        return False
    auto_map = config.get("auto_map") or {}
    auto_model = auto_map.get("AutoModel") if isinstance(auto_map, Mapping) else None
    classes = list(config.get("architectures") or [])
    if isinstance(auto_model, str):
        classes.append(auto_model.rsplit(".", 1)[-1])
    return ARCHITECTURE in classes


@dataclass(frozen=True)
class NemotronVLInputs:
    """One item as the model's ``encode_*`` methods take it: raw text and/or a decoded RGB image."""

    modality: Modality
    text: str | None
    image: Any | None


class NemotronVLBackend:
    """The checkpoint's own ``encode_queries`` / ``encode_documents``, L2-normalised.

    Args:
        model: The loaded model (its remote-code class), with a ``processor`` attribute.
        model_id: Name or path it was loaded from.
        revision: Hub revision, if any.
        p_max_length: Token budget per document modality (keys ``text``, ``image``, ``image_text``);
            merged over the card's 8192 / 2048 / 10240.
        max_input_tiles: Most tiles an image is split into (card: 6).
        use_thumbnail: Add a low-resolution tile of the whole image (card: ``True``).

    Note:
        The processor's settings are model state, set before every call; share one backend between
        threads only with a lock.
    """

    query_modalities = frozenset({"text"})
    document_modalities = frozenset({"text", "image"})

    def __init__(
        self,
        model: Any,
        *,
        model_id: str,
        revision: str | None = None,
        p_max_length: Mapping[str, int] | None = None,
        max_input_tiles: int = DEFAULT_MAX_INPUT_TILES,
        use_thumbnail: bool = DEFAULT_USE_THUMBNAIL,
    ) -> None:
        unknown = sorted(set(p_max_length or {}) - set(DEFAULT_P_MAX_LENGTH))
        if unknown:
            raise ValueError(f"p_max_length keys must be among {sorted(DEFAULT_P_MAX_LENGTH)}, got {unknown}")
        if max_input_tiles < 1:
            raise ValueError(f"max_input_tiles must be >= 1, got {max_input_tiles}")
        self.model = model
        self.model_id = model_id
        self.revision = revision
        self.p_max_length: dict[str, int] = {**DEFAULT_P_MAX_LENGTH, **(p_max_length or {})}
        self.max_input_tiles = max_input_tiles
        self.use_thumbnail = use_thumbnail
        self.dim: int = _hidden_size(model.config)
        self.processor = model.processor
        self.processor.max_input_tiles = max_input_tiles
        self.processor.use_thumbnail = use_thumbnail
        self._tokenizer = getattr(self.processor, "tokenizer", None)
        tokens_per_tile = int(
            getattr(model, "num_image_token", 0)
            or getattr(self.processor, "num_image_token", 0)
            or TOKENS_PER_TILE
        )
        self._image_tokens = tokens_per_tile * (max_input_tiles + int(use_thumbnail))

    @classmethod
    def load(cls, options: LoadOptions, **kwargs: Any) -> NemotronVLBackend:
        """Load with ``AutoModel`` and the checkpoint's own code, as the card does.

        The model's constructor loads its processor from ``config.name_or_path`` without a revision, so
        a hub id at a pinned revision is first resolved to that revision's local snapshot; model and
        processor then come from the same files.
        """
        from transformers import AutoModel

        model_kwargs = dict(kwargs.pop("model_kwargs", None) or {})
        source = options.name_or_path
        if options.revision is not None and not os.path.isdir(source):
            from huggingface_hub import snapshot_download

            source = snapshot_download(source, revision=options.revision)
        model = AutoModel.from_pretrained(
            source,
            dtype=options.dtype,
            attn_implementation=options.attn_implementation,
            trust_remote_code=options.trust_remote_code,
            **model_kwargs,
        )
        model = model.to(options.device).eval()
        return cls(model, model_id=options.name_or_path, revision=options.revision, **kwargs)

    # -- protocol -----------------------------------------------------------------------------------

    def prepare(self, item: Content, *, kind: Kind, index: int) -> PreparedItem:
        """Decode the image and estimate the item's length for length-sorted batching.

        The length is a cheap estimate, not the processor's exact count: text tokens from the model's
        tokenizer (characters / 4 without one), plus ``tokens per tile x (max_input_tiles + thumbnail)``
        for an image (the most it can take), capped at the modality's ``p_max_length``.

        Raises:
            OmniInputError: audio or video, an image query, or an unreadable image.
        """
        require_modalities(self, item, kind=kind, index=index)
        image = None
        if item.image is not None:
            from omni_rag import media

            try:
                image = media.load_image(item.image)
            except MediaError as error:
                raise OmniInputError(str(error), index=index, field="image") from error
        modality: Modality = "text" if image is None else ("image" if item.text is None else "image_text")
        length = (self._text_tokens(item.text) if item.text is not None else 0) + (
            self._image_tokens if image is not None else 0
        )
        if kind == "document":
            length = min(length, self.p_max_length[modality])
        inputs = NemotronVLInputs(modality=modality, text=item.text, image=image)
        return PreparedItem(length=max(length, 1), inputs=inputs)

    @torch.inference_mode()
    def embed_prepared(self, items: Sequence[PreparedItem], *, kind: Kind) -> np.ndarray:
        """One ``encode_*`` call per modality in the batch; rows come back in ``items`` order."""
        inputs: list[NemotronVLInputs] = [item.inputs for item in items]
        out = np.zeros((len(inputs), self.dim), dtype=np.float32)
        if kind == "query":
            groups: dict[Modality, list[int]] = {"text": list(range(len(inputs)))}
        else:
            groups = {}
            for i, entry in enumerate(inputs):
                groups.setdefault(entry.modality, []).append(i)
        for modality, rows in groups.items():
            if not rows:
                continue
            chosen = [inputs[i] for i in rows]
            if kind == "query":
                vectors = self.model.encode_queries([e.text for e in chosen])
            else:
                vectors = self._encode_documents(modality, chosen)
            out[rows] = F.normalize(vectors.float(), dim=-1).cpu().numpy()
        return out

    # -- helpers -----------------------------------------------------------------------------------

    def _encode_documents(self, modality: Modality, chosen: Sequence[NemotronVLInputs]) -> torch.Tensor:
        self.processor.p_max_length = self.p_max_length[modality]
        self.processor.max_input_tiles = self.max_input_tiles
        self.processor.use_thumbnail = self.use_thumbnail
        if modality == "text":
            return self.model.encode_documents(texts=[e.text for e in chosen])  # type: ignore[no-any-return]
        images = [e.image for e in chosen]
        if modality == "image":
            return self.model.encode_documents(images=images)  # type: ignore[no-any-return]
        return self.model.encode_documents(images=images, texts=[e.text for e in chosen])  # type: ignore[no-any-return]

    def _text_tokens(self, text: str) -> int:
        if self._tokenizer is not None and hasattr(self._tokenizer, "encode"):
            return len(self._tokenizer.encode(text, add_special_tokens=False))
        return len(text) // 4 + 1


def loads_natively(config: Mapping[str, Any]) -> bool:
    """The model exists only as the checkpoint's own code: it always needs ``trust_remote_code``."""
    return False


def _hidden_size(config: Any) -> int:
    """The embedding size: the language model's hidden size (2048 for the real model)."""
    llm = getattr(config, "llm_config", None)
    size = llm.get("hidden_size") if isinstance(llm, Mapping) else getattr(llm, "hidden_size", None)
    if size is None:
        size = getattr(config, "hidden_size", None)
    if size is None:
        raise ValueError(
            "cannot find the embedding size: config has neither llm_config.hidden_size nor hidden_size"
        )
    return int(size)


def load(options: LoadOptions, **kwargs: Any) -> NemotronVLBackend:
    """Registry entry point (see :mod:`omni_rag.embedder.registry`)."""
    return NemotronVLBackend.load(options, **kwargs)
