"""Tiny Omni-Embed-Nemotron-shaped checkpoints, built offline in seconds.

The real model (``nvidia/omni-embed-nemotron-3b``) is a Qwen2.5-Omni *thinker* whose language model
attends bidirectionally. Tests and CI cannot download 9 GB of weights (nor even a tokenizer), so this
module builds a checkpoint folder with the *real* architecture classes, the *real* processor classes and
the processor defaults that decide token counts (patch 14, merge 2, 16 kHz, 128 mel bins, hop 160), but
with a handful of tiny layers, a byte-level BPE tokenizer trained on a built-in corpus, and seeded random
weights. The folder goes through exactly the ``AutoModel``/``AutoProcessor.from_pretrained`` paths the
model card uses.

Two kinds exist:

* ``native``: ``Qwen2_5OmniThinkerModel`` (what ``AutoModel`` maps ``qwen2_5_omni_thinker`` to). Causal.
* ``custom``: mirrors the real repository layout - ``model_type="nvomniembed"``, ``auto_map`` pointing at
  ``modeling_nv_omni_embed.NVOmniEmbedConfig``/``NVOmniEmbedModel`` (a subclass of
  ``Qwen2_5OmniThinkerForConditionalGeneration``) shipped inside the folder, with bidirectional,
  padding-aware attention. Loads only with ``trust_remote_code=True``.

Both kinds built with the same ``seed`` share the same backbone weights, so any difference between them
comes from the attention pattern alone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from omni_rag.testing.cache import (
    cached_build,
    default_cache_dir,
    prepare_folder,
    quiet_progress_bars,
    remote_code_source,
)

__all__ = [
    "CHAT_TEMPLATE",
    "CUSTOM_MODEL_CLASS",
    "CUSTOM_MODEL_TYPE",
    "CUSTOM_MODULE_NAME",
    "SPECIAL_TOKENS",
    "TinyKind",
    "build_tiny_checkpoint",
    "tiny_checkpoint",
]

TinyKind = Literal["native", "custom"]

# Bump whenever the folder contents change, so stale cached folders are never reused.
_BUILDER_VERSION = "2"

CUSTOM_MODULE_NAME = "modeling_nv_omni_embed"
CUSTOM_MODEL_CLASS = "NVOmniEmbedModel"
CUSTOM_MODEL_TYPE = "nvomniembed"

# Qwen2.5-Omni's own chat template (as shipped with Qwen/Qwen2.5-Omni-* and used by transformers' processor
# tests). A non-system first message gets the default system prompt, which therefore appears in every
# embedded item - token counts in tests must include it.
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant."
    "<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "{% if add_audio_id %}Audio {{ audio_count.value }}: {% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Appended after the BPE vocabulary in Qwen2.5-Omni's order (151643..151656 in the real tokenizer), so the
# offsets between special ids match the real model.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|vision_pad|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
)

# Named tokens the Qwen2.5-Omni processor reads as ``tokenizer.<name>`` / ``tokenizer.<name>_id``.
_NAMED_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}

# Qwen2's pre-tokenisation regex: keeps the tiny tokenizer's word splitting identical to the real one.
_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)

_BPE_VOCAB_SIZE = 256 + 400  # byte alphabet + merges

_CORPUS: tuple[str, ...] = (
    "system\nYou are a helpful assistant.",
    "user\nassistant\n",
    "query: passage: This is a passage to be embedded.",
    "Retrieve the passage that answers the question.",
    "The quick brown fox jumps over the lazy dog.",
    "Audio and video are encoded independently, preserving their full temporal structure.",
    "A multimodal embedding model encodes text, images, audio and video into one vector space.",
    "Retrieval augmented generation finds relevant documents for a question and answers with them.",
    "What is the capital of France? Paris is the capital and largest city of France.",
    "How many legs does a spider have? A spider has eight legs.",
    "The cat sat on the mat while the dog slept near the door.",
    "Photosynthesis converts light energy into chemical energy stored in sugar.",
    "The meeting was moved to Tuesday afternoon at three o'clock.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 2025 3.14 42.",
    'Punctuation, quotes "like this", (parentheses), [brackets] and {braces}; colons: semicolons!',
    "She said it's fine, they're here, we've won, I'm done, you'll see, he'd go.",
    "Embeddings are normalised so that cosine similarity equals the dot product.",
    "A red square, a green circle, a blue triangle and a yellow star.",
    "Speech recognition turns spoken words into written text.",
    "def main():\n    return 0\n",
    "Le renard brun saute par-dessus le chien paresseux. Der schnelle braune Fuchs.",
)


def _text_config_kwargs(vocab_size: int, pad_token_id: int, eos_token_id: int) -> dict[str, Any]:
    # head_dim 16 -> 8 rotary frequency pairs, split over (temporal, height, width) like the real
    # model's [16, 24, 24] split of 64 pairs.
    return {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        "pad_token_id": pad_token_id,
        "eos_token_id": eos_token_id,
        "tie_word_embeddings": False,
    }


def _vision_config_kwargs(out_hidden_size: int) -> dict[str, Any]:
    return {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "in_channels": 3,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [1],
        "out_hidden_size": out_hidden_size,
    }


def _audio_config_kwargs(output_dim: int) -> dict[str, Any]:
    return {
        "num_mel_bins": 128,
        "encoder_layers": 2,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "d_model": 32,
        "max_source_positions": 1500,
        "n_window": 100,
        "output_dim": output_dim,
    }


def _build_tokenizer() -> Any:
    """Train a tiny byte-level BPE with Qwen2's pre-tokenizer and wrap it as the real tokenizer class."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator([line for line in _CORPUS for _ in range(3)], trainer=trainer)
    model_json = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model_json["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_json["merges"]]
    # Special tokens go into the vocab at fixed ids, so ``add_tokens`` below reuses them instead of
    # appending in whatever order the tokenizer base class happens to register them.
    base = len(vocab)
    for offset, token in enumerate(SPECIAL_TOKENS):
        vocab[token] = base + offset
    # Passed as a dict: the stubs type ``merges`` as strings and ``unk_token`` as non-optional, but the
    # real Qwen2.5-Omni tokenizer has merge pairs and no unk token.
    tokenizer_kwargs: dict[str, Any] = {
        "vocab": vocab,
        "merges": merges,
        "unk_token": None,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "extra_special_tokens": dict(_NAMED_TOKENS),
        "model_max_length": 32768,
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
    }
    tokenizer = Qwen2Tokenizer(**tokenizer_kwargs)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tokenizer


def _build_processor(tokenizer: Any) -> Any:
    """Assemble the real Qwen2.5-Omni processor stack with the values Qwen ships in preprocessor_config."""
    from transformers import Qwen2_5OmniProcessor, Qwen2VLImageProcessor, WhisperFeatureExtractor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    clip_mean = [0.48145466, 0.4578275, 0.40821073]
    clip_std = [0.26862954, 0.26130258, 0.27577711]
    vision: dict[str, Any] = {
        "min_pixels": 56 * 56,
        "max_pixels": 14 * 14 * 4 * 16384,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": clip_mean,
        "image_std": clip_std,
    }
    feature_extractor = WhisperFeatureExtractor(
        feature_size=128,
        sampling_rate=16000,
        hop_length=160,
        chunk_length=300,
        n_fft=400,
        padding_value=0.0,
        dither=0.0,
        return_attention_mask=True,
        padding_side="right",
    )
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(**vision),
        video_processor=Qwen2VLVideoProcessor(**vision),
        feature_extractor=feature_extractor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _build_config(tokenizer: Any) -> Any:
    from transformers import (
        Qwen2_5OmniAudioEncoderConfig,
        Qwen2_5OmniTextConfig,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniVisionEncoderConfig,
    )

    def tid(token: str) -> int:
        return int(tokenizer.convert_tokens_to_ids(token))

    hidden = 64
    # Pad the embedding table to a multiple of 64 like the real checkpoint (151936 rows for 151665 tokens).
    vocab_size = -(-len(tokenizer) // 64) * 64
    text_config = Qwen2_5OmniTextConfig(
        **_text_config_kwargs(vocab_size, tid("<|endoftext|>"), tid("<|im_end|>"))
    )
    user_ids = tokenizer.encode("user", add_special_tokens=False)
    # Not declared fields of the config class, but read by ``get_rope_index`` (and present in the real
    # thinker config), so they must match the tokenizer too.
    extra: dict[str, Any] = {
        "vision_start_token_id": tid("<|vision_bos|>"),
        "vision_end_token_id": tid("<|vision_eos|>"),
        "vision_token_id": tid("<|vision_pad|>"),
        "pad_token_id": tid("<|endoftext|>"),
        "bos_token_id": tid("<|im_start|>"),
        "eos_token_id": tid("<|im_end|>"),
    }
    return Qwen2_5OmniThinkerConfig(
        text_config=text_config,
        vision_config=Qwen2_5OmniVisionEncoderConfig(**_vision_config_kwargs(hidden)),
        audio_config=Qwen2_5OmniAudioEncoderConfig(**_audio_config_kwargs(hidden)),
        audio_token_index=tid("<|AUDIO|>"),
        image_token_index=tid("<|IMAGE|>"),
        video_token_index=tid("<|VIDEO|>"),
        audio_start_token_id=tid("<|audio_bos|>"),
        audio_end_token_id=tid("<|audio_eos|>"),
        user_token_id=int(user_ids[0]),
        position_id_per_seconds=25,
        seconds_per_chunk=2,
        **extra,
    )


def _load_custom_module(folder: Path) -> ModuleType:
    """Import the generated modeling file from ``folder`` without touching ``sys.path``."""
    file = folder / f"{CUSTOM_MODULE_NAME}.py"
    name = f"_omni_rag_tiny_{CUSTOM_MODULE_NAME}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - only on a broken filesystem
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def build_tiny_checkpoint(
    path: str | os.PathLike[str],
    *,
    custom_code: bool = False,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a tiny, randomly initialised Omni-Embed-shaped checkpoint folder.

    Args:
        path: Target folder. Created if missing.
        custom_code: Ship ``modeling_nv_omni_embed.py`` + ``auto_map`` (bidirectional attention, loads only
            with ``trust_remote_code=True``) instead of a plain ``qwen2_5_omni_thinker`` checkpoint.
        seed: Weight seed. Same seed gives byte-identical weights; the global RNG is left untouched.
        overwrite: Replace a non-empty ``path``; without it a non-empty folder is an error, so a typo can
            never wipe real data.

    Returns:
        The folder, loadable with ``AutoModel.from_pretrained`` and ``AutoProcessor.from_pretrained``.

    Raises:
        FileExistsError: ``path`` exists, is not empty and ``overwrite`` is false.
    """
    import torch
    from transformers import Qwen2_5OmniThinkerModel

    target = prepare_folder(path, overwrite=overwrite)

    tokenizer = _build_tokenizer()
    processor = _build_processor(tokenizer)
    config = _build_config(tokenizer)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = Qwen2_5OmniThinkerModel(config).eval()
        lm_head_weight = torch.randn(config.text_config.vocab_size, config.text_config.hidden_size) * 0.02

    if custom_code:
        (target / f"{CUSTOM_MODULE_NAME}.py").write_text(
            remote_code_source(f"{CUSTOM_MODULE_NAME}.py"), encoding="utf-8"
        )
        module = _load_custom_module(target)
        custom_config = module.NVOmniEmbedConfig(**config.to_dict())
        custom_config.architectures = [CUSTOM_MODEL_CLASS]
        custom_config.auto_map = {
            "AutoConfig": f"{CUSTOM_MODULE_NAME}.NVOmniEmbedConfig",
            "AutoModel": f"{CUSTOM_MODULE_NAME}.{CUSTOM_MODEL_CLASS}",
        }
        model = module.NVOmniEmbedModel(custom_config).eval()
        # Same backbone weights as the native kind: differences between kinds are attention-only.
        model.model.load_state_dict(backbone.state_dict(), strict=True)
        with torch.no_grad():
            model.lm_head.weight.copy_(lm_head_weight)
    else:
        model = backbone

    with quiet_progress_bars():
        model.save_pretrained(target)
    processor.save_pretrained(target)
    return target


def tiny_checkpoint(kind: TinyKind = "native", cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return a cached tiny checkpoint folder, building it at most once per cache directory.

    Safe across processes (pytest-xdist workers, parallel CI jobs): the build runs under a file lock into a
    scratch folder that is atomically renamed into place, so readers never see a half-written folder.

    Args:
        kind: ``"native"`` (plain thinker, causal) or ``"custom"`` (remote-code bidirectional model).
        cache_dir: Parent folder for the cached checkpoints. Defaults to ``$OMNI_RAG_TINY_CACHE`` or a
            folder in the system temp dir keyed by builder and transformers versions.

    Returns:
        Path of the ready checkpoint folder (seed 0).

    Raises:
        ValueError: Unknown ``kind``.
    """
    if kind not in ("native", "custom"):
        raise ValueError(f"kind must be 'native' or 'custom', got {kind!r}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir(_BUILDER_VERSION)
    return cached_build(
        root, f"tiny-{kind}", lambda folder: build_tiny_checkpoint(folder, custom_code=kind == "custom")
    )
