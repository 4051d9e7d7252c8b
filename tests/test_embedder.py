"""OmniEmbedder behaviour on the tiny checkpoint: errors, skipping, batch invariance, streams, loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from omni_rag import Content, OmniEmbedder, OmniInputError
from omni_rag.embedder import ModelLoadError, split_streams
from omni_rag.embedder.batching import length_sorted_batches
from omni_rag.embedder.loading import OFFICIAL_REVISIONS, resolve_revision, resolve_trust_remote_code
from omni_rag.testing.media import make_corrupt


def test_text_prompts_distinguish_queries_from_documents(embedder: OmniEmbedder) -> None:
    query = embedder.embed_queries(["lava"])[0]
    document = embedder.embed_documents(["lava"])[0]
    assert float(query @ document) < 1 - 1e-4


def test_prompts_can_be_disabled(native_checkpoint: Path) -> None:
    plain = OmniEmbedder.from_pretrained(
        native_checkpoint, device="cpu", prompts={"query": None, "document": None}
    )
    prompted = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu")
    a = plain.embed_queries(["lava"])[0]
    b = plain.embed_documents(["lava"])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert float(a @ prompted.embed_queries(["lava"])[0]) < 1 - 1e-4


def test_batch_invariance(embedder: OmniEmbedder, media_dir: Path) -> None:
    rng = np.random.default_rng(3)
    items: list[Content | str] = [
        "short",
        "a considerably longer piece of text that pads every other item in the batch " * 3,
        Content(audio=(0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)),
        Content(audio=str(media_dir / "tone.wav")),
        Content(text="with picture", image=str(media_dir / "picture.png")),
        Content(video=str(media_dir / "clip.mp4")),
    ]
    together = embedder.embed_documents(items, batch_size=len(items))
    alone = np.stack([embedder.embed_documents([item])[0] for item in items])
    assert np.abs(together - alone).max() <= 1e-5
    reversed_batch = embedder.embed_documents(items[::-1], batch_size=4)[::-1]
    assert np.abs(reversed_batch - alone).max() <= 1e-5


def test_audio_is_not_padded_to_128_seconds(embedder: OmniEmbedder) -> None:
    wave = np.zeros(16000 * 2, dtype=np.float32)
    prepared = embedder.backend.prepare(Content(audio=wave), kind="document", index=0)  # type: ignore[attr-defined]
    frames = prepared.inputs.features["input_features"].shape[-1]
    assert frames < 16000 * 3 // 160  # the card's recipe gives 12,800 frames (128 s)


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ("", "text", "empty text"),
        ("   ", "text", "empty text"),
        (Content(), "item", "empty item"),
        (3.5, "item", "unsupported type float"),
        (Content(image="/no/such/file.png"), "image", ""),
        (Content(audio="/no/such/file.wav"), "audio", ""),
        (Content(video="/no/such/file.mp4"), "video", ""),
        (Content(audio=np.zeros((2, 1600), dtype=np.float32)), "audio", "stereo"),
        (Content(audio=np.zeros(1600, dtype=np.int16)), "audio", "float"),
        (Content(video=np.zeros((4, 8, 8), dtype=np.uint8)), "video", "shape"),
        (Content(image=np.zeros((3, 16, 16), dtype=np.float64)), "image", ""),
        (Content(image=object()), "image", "unsupported"),
    ],
)
def test_bad_input_names_index_field_reason(
    embedder: OmniEmbedder, item: object, field: str, reason: str
) -> None:
    with pytest.raises(OmniInputError) as caught:
        embedder.embed_documents(["fine", item])  # type: ignore[list-item]
    assert caught.value.index == 1
    assert caught.value.field == field
    assert reason.lower() in caught.value.reason.lower()
    assert "item 1" in str(caught.value)


def test_no_audio_track_and_undecodable_media(
    embedder: OmniEmbedder, media_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(OmniInputError) as caught:
        embedder.embed_documents([Content(audio=str(media_dir / "silent.mp4"))])
    assert caught.value.field == "audio"
    assert "audio track" in caught.value.reason
    corrupt = make_corrupt(tmp_path / "broken.mp4")
    with pytest.raises(OmniInputError) as caught:
        embedder.embed_documents(["ok", Content(video=str(corrupt))])
    assert (caught.value.index, caught.value.field) == (1, "video")


def test_skip_keeps_good_items_and_reports_each_failure(embedder: OmniEmbedder, media_dir: Path) -> None:
    items = ["first", "", Content(audio="/missing.wav"), Content(audio=str(media_dir / "tone.wav")), 7]
    result = embedder.embed_documents(items, errors="skip")  # type: ignore[arg-type]
    assert result.ok_indices == [0, 3]
    assert [(f.index, f.field) for f in result.failures] == [(1, "text"), (2, "audio"), (4, "item")]
    good = embedder.embed_documents(["first", Content(audio=str(media_dir / "tone.wav"))])
    assert result.embeddings[0] is not None and result.embeddings[3] is not None
    np.testing.assert_allclose(result.embeddings[0], good[0], atol=1e-6)
    np.testing.assert_allclose(result.embeddings[3], good[1], atol=1e-6)


def test_streams_embed_audio_and_video_separately(embedder: OmniEmbedder, media_dir: Path) -> None:
    clip = str(media_dir / "clip.mp4")
    item = Content(text="caption", image=str(media_dir / "picture.png"), audio=clip, video=clip)
    assert set(split_streams(item)) == {"text", "audio", "video"}
    assert set(split_streams(Content(image="x.png"))) == {"image"}
    streams = embedder.embed_document_streams([item, "just text"])
    assert set(streams[0]) == {"text", "audio", "video"}
    assert set(streams[1]) == {"text"}
    np.testing.assert_allclose(
        streams[0]["audio"], embedder.embed_documents([Content(audio=clip)])[0], atol=1e-6
    )
    np.testing.assert_allclose(
        streams[0]["video"], embedder.embed_documents([Content(video=clip)])[0], atol=1e-6
    )
    joint = embedder.embed_documents([Content(audio=clip, video=clip)])[0]
    assert float(joint @ streams[0]["audio"]) < 1 - 1e-4


def test_streams_skip_drops_whole_item_with_reason(embedder: OmniEmbedder, media_dir: Path) -> None:
    result = embedder.embed_document_streams(
        [Content(text="ok", audio="/missing.wav"), "fine"], errors="skip"
    )
    assert result.embeddings[0] is None
    assert result.embeddings[1] is not None and set(result.embeddings[1]) == {"text"}
    assert [(f.index, f.field) for f in result.failures] == [(0, "audio")]


def test_context_overflow_raises_unless_truncating(native_checkpoint: Path) -> None:
    small = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu")
    small.backend.processor.max_tokens = 40  # type: ignore[attr-defined]
    long_text = "lava " * 200
    with pytest.raises(OmniInputError, match="exceed the model's context of 40"):
        small.embed_documents(["fine", long_text])
    truncating = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", truncate=True)
    truncating.backend.processor.max_tokens = 40  # type: ignore[attr-defined]
    assert truncating.embed_documents([long_text]).shape == (1, truncating.dim)


def test_dim_and_identity(embedder: OmniEmbedder, native_checkpoint: Path) -> None:
    assert (
        embedder.dim
        == json.loads((native_checkpoint / "config.json").read_text())["text_config"]["hidden_size"]
    )
    assert embedder.model_id == str(native_checkpoint)
    assert embedder.revision is None


def test_remote_code_only_when_needed_and_explicit() -> None:
    official = {
        "model_type": "nvomniembed",
        "auto_map": {"AutoModel": "modeling_nv_omni_embed.NVOmniEmbedModel"},
    }
    # A checkpoint a backend runs natively never needs its code, official or not ...
    assert resolve_trust_remote_code("nvidia/omni-embed-nemotron-3b", official, None, native_ok=True) is False
    assert resolve_trust_remote_code("local/copy", official, None, native_ok=True) is False
    # ... but the caller may ask for it.
    assert resolve_trust_remote_code("local/copy", official, True, native_ok=True) is True
    # Code-only checkpoints: official ids are trusted at their pin, others need an explicit yes.
    other = {"model_type": "x", "auto_map": {"AutoModel": "m.M"}}
    assert resolve_trust_remote_code("nvidia/llama-nemotron-embed-vl-1b-v2", other, None) is True
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        resolve_trust_remote_code("some/other", other, None)
    with pytest.raises(ModelLoadError, match="cannot be loaded with trust_remote_code=False"):
        resolve_trust_remote_code("some/other", other, False)
    assert resolve_trust_remote_code("some/other-model", {"model_type": "x"}, None) is False


def _legacy_layout_copy(checkpoint: Path, target: Path) -> Path:
    """The official weights' key layout (transformers 4.51): towers at the top, text model under ``model``."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(checkpoint, target)
    weights = load_file(str(checkpoint / "model.safetensors"))

    def old_name(key: str) -> str:
        for tower in ("model.audio_tower.", "model.visual."):
            if key.startswith(tower):
                return key[len("model.") :]
        return key.replace("model.language_model.", "model.", 1)

    save_file({old_name(k): v.contiguous() for k, v in weights.items()}, str(target / "model.safetensors"))
    return target


def test_official_layout_runs_natively_and_bidirectionally(
    custom_checkpoint: Path, custom_embedder: OmniEmbedder, tmp_path: Path, media_dir: Path
) -> None:
    items: list[Content | str] = [
        "short",
        "a longer text that makes the first one padded",
        Content(text="picture", image=str(media_dir / "picture.png")),
        Content(audio=str(media_dir / "tone.wav")),
    ]
    remote = custom_embedder.embed_documents(items)  # the checkpoint's own (bidirectional) code
    for folder in (custom_checkpoint, _legacy_layout_copy(custom_checkpoint, tmp_path / "legacy")):
        native = OmniEmbedder.from_pretrained(folder, device="cpu")  # no remote code executed
        assert type(native.backend.model).__module__.startswith("transformers.")  # type: ignore[attr-defined]
        np.testing.assert_allclose(native.embed_documents(items), remote, atol=1e-5)
    causal = OmniEmbedder.from_pretrained(custom_checkpoint, device="cpu", bidirectional=False)
    assert np.abs(causal.embed_documents(items[:1]) - remote[:1]).max() > 1e-4


def test_official_revision_is_pinned(tmp_path: Path) -> None:
    assert (
        resolve_revision("nvidia/omni-embed-nemotron-3b", None)
        == OFFICIAL_REVISIONS["nvidia/omni-embed-nemotron-3b"]
    )
    assert resolve_revision("nvidia/omni-embed-nemotron-3b", "main") == "main"
    assert resolve_revision(str(tmp_path), None) is None


def test_defaults_on_cpu(embedder: OmniEmbedder) -> None:
    model = embedder.backend.model  # type: ignore[attr-defined]
    assert next(model.parameters()).dtype == torch.float32
    assert model.config._attn_implementation == "sdpa"


def test_unsupported_model_type_is_refused(native_checkpoint: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(native_checkpoint, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "bert"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="not supported by any omni-rag backend"):
        OmniEmbedder.from_pretrained(other, device="cpu")


def test_length_sorted_batches_cover_every_index_once() -> None:
    lengths = [5, 100, 7, 100, 1, 50]
    batches = length_sorted_batches(lengths, batch_size=2, max_tokens_per_batch=150)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert batches[0] == [1]  # two 100-token items would exceed 150 padded tokens
    assert all(len(b) <= 2 for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)


def test_a_huge_item_is_never_batched_with_small_ones() -> None:
    # one 16k-token image among 300-token items: padding them to 16k would multiply peak memory
    lengths = [300, 16384, 280, 310, 290, 120]
    batches = length_sorted_batches(lengths, batch_size=8, max_tokens_per_batch=65536)
    assert batches[0] == [1]
    assert batches[1] == [3, 0, 4, 2]  # similar lengths share a batch
    assert batches[2] == [5]  # under half the batch's longest: its own batch
