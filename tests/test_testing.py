"""Tests for the tiny-checkpoint builder: the real loading paths, the card recipe and attention semantics."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from qwen_omni_utils import process_mm_info
from transformers import AutoModel, AutoProcessor

from omni_rag.testing import (
    CHAT_TEMPLATE,
    CUSTOM_MODEL_CLASS,
    SPECIAL_TOKENS,
    build_tiny_checkpoint,
    tiny_checkpoint,
)

CARD_TEXT_KWARGS = {"truncation": True, "padding": True, "max_length": 204800}
CARD_VIDEO_KWARGS = {"min_pixels": 32 * 14 * 14, "max_pixels": 64 * 28 * 28, "use_audio_in_video": False}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-cache")


@pytest.fixture(scope="session")
def native_path(cache_root: Path) -> Path:
    return tiny_checkpoint("native", cache_dir=cache_root)


@pytest.fixture(scope="session")
def custom_path(cache_root: Path) -> Path:
    return tiny_checkpoint("custom", cache_dir=cache_root)


@functools.cache
def _load(path: Path, *, custom: bool, attn: str = "sdpa") -> tuple[Any, Any]:
    """Load once per (folder, kind, attention); the tests only run inference, so sharing is safe."""
    model = AutoModel.from_pretrained(path, trust_remote_code=custom, attn_implementation=attn).eval()
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=custom)
    return model, processor


def _card_batch(processor: Any, content: list[dict[str, Any]], audio_kwargs: dict[str, Any] | None) -> Any:
    """Run the model card's preprocessing verbatim for one user turn."""
    conversation = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=False, tokenize=False)
    audio, images, videos = process_mm_info(conversation, use_audio_in_video=False)
    kwargs: dict[str, Any] = {
        "text": text,
        "images": images,
        "videos": videos,
        "audio": audio,
        "return_tensors": "pt",
        "text_kwargs": CARD_TEXT_KWARGS,
        "videos_kwargs": CARD_VIDEO_KWARGS,
    }
    if audio_kwargs is not None:
        kwargs["audio_kwargs"] = audio_kwargs
    return processor(**kwargs)


def _masked_mean(model: Any, batch: Any) -> torch.Tensor:
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
    mask = batch["attention_mask"][..., None].to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1)


def test_native_loads_through_auto_classes_with_real_components(native_path: Path) -> None:
    model, processor = _load(native_path, custom=False)
    assert type(model).__name__ == "Qwen2_5OmniThinkerModel"
    assert type(processor).__name__ == "Qwen2_5OmniProcessor"
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"
    assert type(processor.feature_extractor).__name__ == "WhisperFeatureExtractor"
    fe = processor.feature_extractor
    assert (fe.feature_size, fe.sampling_rate, fe.hop_length, fe.n_fft, fe.chunk_length) == (
        128,
        16000,
        160,
        400,
        300,
    )
    assert processor.image_processor.patch_size == 14
    assert processor.image_processor.merge_size == 2
    assert processor.video_processor.temporal_patch_size == 2
    assert processor.chat_template == CHAT_TEMPLATE
    assert processor.tokenizer.padding_side == "left"
    assert model.config.text_config.max_position_embeddings == 32768
    assert len(processor.tokenizer) <= model.config.text_config.vocab_size <= 1024


def test_config_token_ids_match_tokenizer(native_path: Path) -> None:
    _, processor = _load(native_path, custom=False)
    config = json.loads((native_path / "config.json").read_text())
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(SPECIAL_TOKENS)))  # contiguous, Qwen order
    assert config["audio_token_index"] == tok.audio_token_id == tok.convert_tokens_to_ids("<|AUDIO|>")
    assert config["image_token_index"] == tok.image_token_id == tok.convert_tokens_to_ids("<|IMAGE|>")
    assert config["video_token_index"] == tok.video_token_id == tok.convert_tokens_to_ids("<|VIDEO|>")
    assert config["audio_start_token_id"] == tok.convert_tokens_to_ids(tok.audio_bos_token)
    assert config["audio_end_token_id"] == tok.convert_tokens_to_ids(tok.audio_eos_token)
    assert config["vision_start_token_id"] == tok.convert_tokens_to_ids(tok.vision_bos_token)
    assert config["vision_end_token_id"] == tok.convert_tokens_to_ids(tok.vision_eos_token)
    assert (
        config["text_config"]["pad_token_id"]
        == tok.pad_token_id
        == tok.convert_tokens_to_ids("<|endoftext|>")
    )
    # Special tokens must never be split by the BPE.
    encoded = tok("<|im_start|>user\nhi<|IMAGE|><|im_end|>", add_special_tokens=False).input_ids
    assert encoded[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.image_token_id in encoded


def test_folder_is_small(native_path: Path, custom_path: Path) -> None:
    for folder in (native_path, custom_path):
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        assert size < 5_000_000, (folder, size)


def test_same_seed_gives_byte_identical_weights(tmp_path: Path) -> None:
    a = build_tiny_checkpoint(tmp_path / "a", seed=3)
    b = build_tiny_checkpoint(tmp_path / "b", seed=3)
    c = build_tiny_checkpoint(tmp_path / "c", seed=4)
    weights = [(p / "model.safetensors").read_bytes() for p in (a, b, c)]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_build_refuses_to_clobber_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError):
        build_tiny_checkpoint(target)
    assert (target / "keep.txt").exists()
    build_tiny_checkpoint(target, overwrite=True)
    assert not (target / "keep.txt").exists()
    assert (target / "config.json").is_file()


def test_tiny_checkpoint_is_cached(cache_root: Path, native_path: Path) -> None:
    stamp = (native_path / "model.safetensors").stat().st_mtime_ns
    assert tiny_checkpoint("native", cache_dir=cache_root) == native_path
    assert (native_path / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="kind"):
        tiny_checkpoint("other", cache_dir=cache_root)  # type: ignore[arg-type]


def test_custom_kind_shares_backbone_weights_with_native(native_path: Path, custom_path: Path) -> None:
    native, _ = _load(native_path, custom=False)
    custom, _ = _load(custom_path, custom=True)
    assert type(custom).__name__ == CUSTOM_MODEL_CLASS
    custom_state = custom.model.state_dict()
    for name, tensor in native.state_dict().items():
        assert torch.equal(custom_state[name], tensor), name


def test_custom_kind_requires_trust_remote_code(custom_path: Path) -> None:
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModel.from_pretrained(custom_path, trust_remote_code=False)


@pytest.mark.parametrize("kind", ["native", "custom"])
@pytest.mark.parametrize(
    ("modality", "audio_kwargs", "placeholder", "expected_tokens", "feature_frames"),
    [
        ("text", {"max_length": 2048000}, None, 0, None),
        ("image", {"max_length": 2048000}, "<|IMAGE|>", 64, None),
        ("audio", {"max_length": 2048000}, "<|AUDIO|>", 50, 12800),
        ("audio", None, "<|AUDIO|>", 50, 30000),
    ],
)
def test_card_recipe_runs_end_to_end(
    kind: str,
    modality: str,
    audio_kwargs: dict[str, Any] | None,
    placeholder: str | None,
    expected_tokens: int,
    feature_frames: int | None,
    native_path: Path,
    custom_path: Path,
) -> None:
    custom = kind == "custom"
    model, processor = _load(custom_path if custom else native_path, custom=custom)
    rng = np.random.default_rng(0)
    contents: dict[str, list[dict[str, Any]]] = {
        "text": [{"type": "text", "text": "passage: This is a passage to be embedded"}],
        "image": [{"type": "image", "image": Image.fromarray(rng.integers(0, 255, (224, 224, 3), np.uint8))}],
        "audio": [{"type": "audio", "audio": (0.1 * rng.standard_normal(32000)).astype(np.float32)}],
    }
    batch = _card_batch(processor, contents[modality], audio_kwargs)
    if placeholder is not None:
        token_id = processor.tokenizer.convert_tokens_to_ids(placeholder)
        assert int((batch["input_ids"] == token_id).sum()) == expected_tokens
    if feature_frames is not None:
        assert tuple(batch["input_features"].shape) == (1, 128, feature_frames)
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    hidden = out.hidden_states[-1]
    assert hidden.shape == (1, batch["input_ids"].shape[1], model.config.text_config.hidden_size)
    assert torch.isfinite(hidden).all()
    if not custom:
        # transformers 5 ties hidden_states[-1] to the final-norm output, so the two are interchangeable.
        assert torch.equal(hidden, out.last_hidden_state)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_custom_attention_is_bidirectional_native_is_causal(
    attn: str, native_path: Path, custom_path: Path
) -> None:
    ids = torch.tensor([[10, 20, 30, 40, 50, 60]])
    changed = ids.clone()
    changed[0, -1] = 70
    mask = torch.ones_like(ids)
    for path, custom in ((native_path, False), (custom_path, True)):
        model, _ = _load(path, custom=custom, attn=attn)
        with torch.no_grad():
            first = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            first_changed = model(
                input_ids=changed, attention_mask=mask, output_hidden_states=True
            ).hidden_states[-1]
        delta = (first[0, 0] - first_changed[0, 0]).abs().max().item()
        if custom:
            assert delta > 1e-3, delta
        else:
            assert delta == 0.0, delta


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", ["native", "custom"])
def test_left_padding_does_not_change_embedding(
    attn: str, kind: str, native_path: Path, custom_path: Path
) -> None:
    custom = kind == "custom"
    model, processor = _load(custom_path if custom else native_path, custom=custom, attn=attn)
    short = "short text"
    long = "a much longer passage that needs many more tokens than the short one does, padded batch"
    batch = processor(text=[short, long], return_tensors="pt", padding=True)
    assert batch["attention_mask"][0, 0] == 0  # the short item really is left-padded
    alone = processor(text=[short], return_tensors="pt", padding=True)
    together = _masked_mean(model, batch)[0]
    single = _masked_mean(model, alone)[0]
    assert (together - single).abs().max().item() <= 1e-5


def test_remote_code_shipped_as_modules() -> None:
    import omni_rag.testing.remote_code as remote_code
    from omni_rag.testing.nemotron_vl import tiny_nemotron_vl_checkpoint

    shipped = Path(remote_code.__file__).parent
    custom = tiny_checkpoint("custom")
    assert (custom / "modeling_nv_omni_embed.py").read_text() == (
        shipped / "modeling_nv_omni_embed.py"
    ).read_text()
    nemotron = tiny_nemotron_vl_checkpoint()
    for name in ("configuration_llama_nemotron_vl.py", "modeling_llama_nemotron_vl.py"):
        assert (nemotron / name).read_text() == (shipped / name).read_text()
