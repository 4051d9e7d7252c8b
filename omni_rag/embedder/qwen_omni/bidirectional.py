"""Bidirectional attention for the native Qwen2.5-Omni thinker, as the paper trains it.

nvidia/omni-embed-nemotron-3b ships remote code written for transformers 4.51: it swaps the
thinker's text model for one whose ``_update_causal_mask`` builds a bidirectional mask. Under
transformers 5 that code silently misbehaves (the towers now live inside ``self.model``, so
replacing it drops the audio and vision encoders, and ``_update_causal_mask`` is never called,
so padded batches attend causally). Transformers 5 loads the checkpoint's weights into its own
thinker classes (it renames 4.x keys), so we do that and switch the text model's attention here.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerTextModel
from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY


class BidirectionalThinkerTextModel(Qwen2_5OmniThinkerTextModel):
    """The thinker's text model with every token attending to every real (unpadded) token."""

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | dict[str, Any] | None = None,
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
            use_cache=False,  # an encoder never decodes; a cache only costs memory
            **kwargs,
        )


def make_bidirectional(text_model: Qwen2_5OmniThinkerTextModel) -> None:
    """Switch a loaded text model to bidirectional attention in place (weights untouched)."""
    text_model.__class__ = BidirectionalThinkerTextModel
    # transformers records hidden states per class name; without this the swapped class returns
    # ``hidden_states=None`` and the card's ``hidden_states[-1]`` fails on the loaded model.
    _CAN_RECORD_REGISTRY[text_model] = text_model._can_record_outputs
    for layer in text_model.layers:
        layer.self_attn.is_causal = False  # type: ignore[union-attr]
