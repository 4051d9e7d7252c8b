"""Bidirectional Qwen2.5-Omni thinker, shaped like nvidia/omni-embed-nemotron-3b's remote code.

Copied into tiny checkpoints by ``omni_rag.testing.checkpoints``. The real repository ships
``modeling_nv_omni_embed.py`` with the same class names, written against transformers 4.51 (it
overrides ``_update_causal_mask``, which transformers 5 no longer calls). This version does the same
job with transformers 5's mask API: the language model gets a precomputed *bidirectional* mask
(padded keys masked) and every attention module has ``is_causal=False``, so eager and sdpa (tested)
and flash attention (not tested here) attend in both directions.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerTextModel


class NVOmniEmbedConfig(Qwen2_5OmniThinkerConfig):
    model_type = "nvomniembed"


class BidirectQwen2_5OmniThinkerTextModel(Qwen2_5OmniThinkerTextModel):
    def __init__(self, config: Any) -> None:
        super().__init__(config)
        for layer in self.layers:
            layer.self_attn.is_causal = False  # type: ignore[union-attr]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | dict | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        # The cache argument stays in kwargs under the caller's name (``cache`` or, in older
        # transformers 5 releases, ``past_key_values``), so the parent never sees both.
        if not isinstance(attention_mask, dict):
            if inputs_embeds is None:
                inputs_embeds = self.embed_tokens(input_ids)
                input_ids = None
            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask
            )
            attention_mask = {"full_attention": mask, "sliding_attention": mask}
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            # An encoder never decodes; a KV cache would only cost memory.
            use_cache=False,
            **kwargs,
        )


class NVOmniEmbedModel(Qwen2_5OmniThinkerForConditionalGeneration):
    config_class = NVOmniEmbedConfig

    def __init__(self, config: NVOmniEmbedConfig) -> None:
        super().__init__(config)
        self.model.language_model = BidirectQwen2_5OmniThinkerTextModel._from_config(config.text_config)
