"""The Qwen2.5-Omni thinker as an embedding backend (Omni-Embed-Nemotron-3B and compatible checkpoints)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from omni_rag.content import Content
from omni_rag.embedder.base import Kind, PreparedItem
from omni_rag.embedder.loading import LoadOptions
from omni_rag.embedder.pooling import pool_and_normalize
from omni_rag.embedder.qwen_omni.bidirectional import make_bidirectional
from omni_rag.embedder.qwen_omni.packing import (
    PACKABLE_ATTENTION,
    PackedBatch,
    pack,
    packed_last_hidden_state,
    segment_mean,
)
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
        packing: Run each batch as one packed row (see :mod:`.packing`). Default: when the
            attention is flash-attention 2 and the model is transformers' own thinker; ``True``
            forces it (SDPA then uses a block-diagonal mask: parity checks, not speed).
    """

    query_modalities = _ALL
    document_modalities = _ALL
    #: ``prepare`` and ``collate`` may run in threads while the model runs (nothing they touch is
    #: used by the forward pass; see :class:`OmniProcessor` for the tokenizer).
    parallel_prepare = True

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
        packing: bool | None = None,
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
        self.packed: bool = self._resolve_packing(packing)

    def _resolve_packing(self, packing: bool | None) -> bool:
        """Whether batches run packed; ``True`` on a model that cannot is refused, not ignored."""
        thinker = self._thinker()
        implementation = thinker.language_model.config._attn_implementation if thinker is not None else None
        if packing is None:
            return implementation == "flash_attention_2"
        if packing and (thinker is None or implementation not in PACKABLE_ATTENTION):
            why = "the model runs its own code" if thinker is None else f"attention is {implementation!r}"
            raise ValueError(
                f"packing=True needs transformers' own thinker with flash_attention_2 or sdpa: {why}"
            )
        return packing

    def _thinker(self) -> Any:
        """The library's ``Qwen2_5OmniThinkerModel`` behind ``self.model``, or ``None`` for own code."""
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration, Qwen2_5OmniThinkerModel

        model = self.model
        if isinstance(model, Qwen2_5OmniThinkerModel):
            return model
        inner = getattr(model, "model", None)
        if (
            isinstance(model, Qwen2_5OmniThinkerForConditionalGeneration)
            and type(model).forward is Qwen2_5OmniThinkerForConditionalGeneration.forward
            and isinstance(inner, Qwen2_5OmniThinkerModel)
        ):
            return inner
        return None

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
        common = options.hub_kwargs()
        # The caller's model_kwargs may override dtype/attention, so the merge is untyped.
        load_kwargs: dict[str, Any] = {
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
        thinker = self._thinker()
        if thinker is not None:
            return thinker(**batch, use_cache=False).last_hidden_state
        return self.model(**batch, use_cache=False, output_hidden_states=True).hidden_states[-1]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, item: Content, *, kind: Kind, index: int) -> PreparedItem:
        inputs = self.processor(item, kind=kind, index=index)
        return PreparedItem(length=inputs.num_tokens, inputs=inputs)

    def collate(self, items: Sequence[PreparedItem], *, kind: Kind) -> dict[str, torch.Tensor] | PackedBatch:
        """Batch prepared items on the CPU (thread-safe: the embedder runs it in a worker).

        On CUDA the tensors are pinned here, off the model's critical path, so the copy in
        :meth:`embed_collated` is asynchronous.
        """
        inputs: list[OmniInputs] = [item.inputs for item in items]
        batch = self.processor.collate(inputs)
        collated: dict[str, torch.Tensor] | PackedBatch = batch
        if self.packed:
            collated = pack(batch, self._thinker().get_rope_index)
        if self.device.type == "cuda":
            collated = _map(collated, lambda _k, v: v.pin_memory())
        return collated

    @torch.inference_mode()
    def embed_collated(self, batch: dict[str, torch.Tensor] | PackedBatch, *, kind: Kind) -> np.ndarray:
        """Run the model on a collated batch; float32 ``(n, dim)`` L2-normalised rows."""
        device = self.device
        dtype = next(self.model.parameters()).dtype
        non_blocking = device.type == "cuda"

        def move(key: str, value: torch.Tensor) -> torch.Tensor:
            if value.is_floating_point() and key != "video_second_per_grid":
                return value.to(device, dtype, non_blocking=non_blocking)
            return value.to(device, non_blocking=non_blocking)

        moved = _map(batch, move)
        if isinstance(moved, PackedBatch):
            hidden = packed_last_hidden_state(self._thinker(), moved)
            pooled = torch.nn.functional.normalize(segment_mean(hidden, moved.lengths), dim=-1)
        else:
            hidden = self._last_hidden_state(moved)
            pooled = pool_and_normalize(hidden, moved["attention_mask"])
        return pooled.cpu().numpy().astype(np.float32)

    def embed_prepared(self, items: Sequence[PreparedItem], *, kind: Kind) -> np.ndarray:
        return self.embed_collated(self.collate(items, kind=kind), kind=kind)


def _map(
    batch: dict[str, torch.Tensor] | PackedBatch, fn: Callable[[str, torch.Tensor], torch.Tensor]
) -> dict[str, torch.Tensor] | PackedBatch:
    if isinstance(batch, PackedBatch):
        return batch.map(fn)
    return {k: fn(k, v) for k, v in batch.items()}


def load(options: LoadOptions, **kwargs: Any) -> QwenOmniBackend:
    """Registry entry point (see :mod:`omni_rag.embedder.registry`)."""
    return QwenOmniBackend.load(options, **kwargs)
