"""The Qwen2.5-Omni thinker as an embedding backend (Omni-Embed-Nemotron-3B and compatible checkpoints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from omni_rag.content import Content
from omni_rag.embedder.base import Kind, PreparedItem
from omni_rag.embedder.loading import LoadOptions
from omni_rag.embedder.pooling import pool_and_normalize
from omni_rag.embedder.qwen_omni.bidirectional import make_bidirectional
from omni_rag.embedder.qwen_omni.processor import OmniInputs, OmniProcessor
from omni_rag.modalities import STREAMS

DEFAULT_PROMPTS: dict[str, str | None] = {"query": "query: ", "document": "passage: "}

#: ``model_type`` values this backend serves: the native thinker, and the remote-code config of
#: nvidia/omni-embed-nemotron-3b (``NVOmniEmbedConfig``, a subclass of the thinker's config).
OFFICIAL_MODEL_TYPE = "nvomniembed"
MODEL_TYPES = frozenset({"qwen2_5_omni_thinker", OFFICIAL_MODEL_TYPE})

_ALL = frozenset(STREAMS)


def accepts(config: Mapping[str, Any]) -> bool:
    """Whether a checkpoint's config is a Qwen2.5-Omni thinker."""
    return config.get("model_type") in MODEL_TYPES


def loads_natively(config: Mapping[str, Any]) -> bool:
    """Every checkpoint this backend accepts runs on transformers' own classes; code is optional."""
    return accepts(config)


def _load_official_natively(options: LoadOptions, load_kwargs: dict[str, Any]) -> Any:
    """The official checkpoint's weights in the native thinker (transformers renames 4.x keys).

    Loaded through the for-generation class, whose key conversion covers both the 4.51
    layout the official weights use and the transformers 5 layout; only its inner thinker
    is kept, so the 151k-row vocabulary head is freed.
    """
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    config = {k: v for k, v in options.config.items() if k not in ("auto_map", "architectures")}
    config["model_type"] = "qwen2_5_omni_thinker"
    extra: dict[str, Any] = dict(load_kwargs)
    if options.revision:
        extra["revision"] = options.revision
    full = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        options.name_or_path, config=Qwen2_5OmniThinkerConfig.from_dict(config), **extra
    )
    return full.model


class QwenOmniBackend:
    """Masked-mean-pooled last hidden state of the thinker, as the model card computes it.

    Args:
        model: The loaded thinker (native ``Qwen2_5OmniThinkerModel`` or the checkpoint's own class).
        processor: The checkpoint's processor.
        model_id: Name or path it was loaded from.
        revision: Hub revision, if any.
        prompts: Prompt per kind; ``{"query": None, "document": None}`` disables them.
        truncate: Cut text-only items longer than the context instead of raising.
        videos_kwargs: Processor video kwargs (defaults to the card's).
        video_options: ``qwen_omni_utils`` video element keys (fps, max_frames, ...).
    """

    query_modalities = _ALL
    document_modalities = _ALL

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        model_id: str,
        revision: str | None = None,
        prompts: Mapping[str, str | None] | None = None,
        truncate: bool = False,
        videos_kwargs: Mapping[str, Any] | None = None,
        video_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.revision = revision
        text_config = model.config.get_text_config()
        self.dim: int = int(text_config.hidden_size)
        self.max_tokens: int = int(getattr(text_config, "max_position_embeddings", 32768))
        self.processor = OmniProcessor(
            processor,
            max_tokens=self.max_tokens,
            prompts=DEFAULT_PROMPTS if prompts is None else prompts,
            videos_kwargs=videos_kwargs,
            video_options=video_options,
            truncate=truncate,
        )

    @classmethod
    def load(
        cls, options: LoadOptions, *, bidirectional: bool | None = None, **kwargs: Any
    ) -> QwenOmniBackend:
        """Load model and processor.

        With ``trust_remote_code`` the checkpoint's own class runs, as the card does. Otherwise
        the native transformers thinker is used; for the official checkpoint's layout
        (``model_type`` ``nvomniembed``) its weights load into the native class and attention
        is made bidirectional (see :mod:`.bidirectional` for why its remote code is not run).

        Args:
            options: Resolved loading options.
            bidirectional: Force bidirectional attention on (or off) for a native load;
                default on for the official layout, off for a plain thinker checkpoint.
            **kwargs: Constructor options (``prompts``, ``truncate``, ...) and ``model_kwargs``.
        """
        from transformers import AutoModel, AutoProcessor

        model_kwargs = dict(kwargs.pop("model_kwargs", None) or {})
        common = {"revision": options.revision, "trust_remote_code": options.trust_remote_code}
        load_kwargs = {
            "dtype": options.dtype,
            "attn_implementation": options.attn_implementation,
            **model_kwargs,
        }
        official_layout = options.config.get("model_type") == OFFICIAL_MODEL_TYPE
        if options.trust_remote_code:
            model = AutoModel.from_pretrained(options.name_or_path, **common, **load_kwargs)
        elif official_layout:
            model = _load_official_natively(options, load_kwargs)
        else:
            model = AutoModel.from_pretrained(options.name_or_path, **common, **load_kwargs)
        if not options.trust_remote_code and (official_layout if bidirectional is None else bidirectional):
            make_bidirectional(model.language_model)
        model = model.to(options.device).eval()
        processor = AutoProcessor.from_pretrained(options.name_or_path, **common)
        return cls(model, processor, model_id=options.name_or_path, revision=options.revision, **kwargs)

    def _last_hidden_state(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The final (normed) hidden states, without computing what pooling throws away.

        The card reads ``hidden_states[-1]`` of the thinker-for-generation, which also
        computes vocabulary logits (151k x sequence, gigabytes for a long video) and keeps
        every layer's states. When the class is the library's own, its inner thinker model
        gives the same tensor directly; a class with its own ``forward`` is called the card's way.
        """
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration, Qwen2_5OmniThinkerModel

        model = self.model
        if isinstance(model, Qwen2_5OmniThinkerModel):
            return model(**batch, use_cache=False).last_hidden_state
        inner = getattr(model, "model", None)
        if (
            isinstance(model, Qwen2_5OmniThinkerForConditionalGeneration)
            and type(model).forward is Qwen2_5OmniThinkerForConditionalGeneration.forward
            and isinstance(inner, Qwen2_5OmniThinkerModel)
        ):
            return inner(**batch, use_cache=False).last_hidden_state
        return model(**batch, use_cache=False, output_hidden_states=True).hidden_states[-1]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, item: Content, *, kind: Kind, index: int) -> PreparedItem:
        inputs = self.processor(item, kind=kind, index=index)
        return PreparedItem(length=inputs.num_tokens, inputs=inputs)

    @torch.inference_mode()
    def embed_prepared(self, items: Sequence[PreparedItem], *, kind: Kind) -> np.ndarray:
        inputs: list[OmniInputs] = [item.inputs for item in items]
        batch = self.processor.collate(inputs)
        device = self.device
        dtype = next(self.model.parameters()).dtype
        moved = {
            k: (
                v.to(device, dtype)
                if v.is_floating_point() and k != "video_second_per_grid"
                else v.to(device)
            )
            for k, v in batch.items()
        }
        hidden = self._last_hidden_state(moved)
        pooled = pool_and_normalize(hidden, moved["attention_mask"])
        return pooled.cpu().numpy().astype(np.float32)


def load(options: LoadOptions, **kwargs: Any) -> QwenOmniBackend:
    """Registry entry point (see :mod:`omni_rag.embedder.registry`)."""
    return QwenOmniBackend.load(options, **kwargs)
