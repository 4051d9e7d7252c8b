"""llama-nemotron-embed-vl backend on a tiny remote-code checkpoint with the real model's interface.

The reference for every vector is the checkpoint's own ``encode_queries`` / ``encode_documents`` on a
separately loaded copy, configured the way the model card does it, then L2-normalised as the card does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from omni_rag import Content, OmniEmbedder, OmniInputError
from omni_rag.embedder import ModelLoadError, nemotron_vl
from omni_rag.embedder.nemotron_vl import DEFAULT_P_MAX_LENGTH, NemotronVLBackend
from omni_rag.embedder.qwen_omni import model as qwen_omni_model
from omni_rag.testing import CUSTOM_MODEL_CLASS, CUSTOM_MODEL_TYPE, CUSTOM_MODULE_NAME
from omni_rag.testing.nemotron_vl import build_tiny_nemotron_vl_checkpoint, tiny_nemotron_vl_checkpoint

ATOL = 1e-6


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return tiny_nemotron_vl_checkpoint()


@pytest.fixture(scope="module")
def nemo(checkpoint: Path) -> OmniEmbedder:
    return OmniEmbedder.from_pretrained(checkpoint, device="cpu", trust_remote_code=True)


@pytest.fixture(scope="module")
def reference(checkpoint: Path) -> Any:
    """An independent copy of the model, driven directly like the model card."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(checkpoint, trust_remote_code=True).eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nemotron_images")
    rng = np.random.default_rng(7)
    paths = {}
    for name, size in {"wide": (90, 30), "tall": (24, 64), "square": (40, 40)}.items():
        array = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        paths[name] = root / f"{name}.png"
        Image.fromarray(array).save(paths[name])
    return paths


def card_documents(
    model: Any,
    *,
    images: list[Image.Image] | None = None,
    texts: list[str] | None = None,
    p_max_length: int | None = None,
    max_input_tiles: int = 6,
    use_thumbnail: bool = True,
) -> np.ndarray:
    """``encode_documents`` with the card's settings for the modality, then the card's normalisation."""
    modality = "image_text" if images and texts else ("image" if images else "text")
    model.processor.p_max_length = p_max_length or DEFAULT_P_MAX_LENGTH[modality]
    model.processor.max_input_tiles = max_input_tiles
    model.processor.use_thumbnail = use_thumbnail
    with torch.inference_mode():
        vectors = model.encode_documents(images=images, texts=texts)
    return F.normalize(vectors.float(), dim=-1).numpy()


def card_queries(model: Any, queries: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return F.normalize(model.encode_queries(queries).float(), dim=-1).numpy()


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


# -- selection and loading ---------------------------------------------------------------------------


def test_backend_is_chosen_from_config_alone(nemo: OmniEmbedder, checkpoint: Path) -> None:
    assert isinstance(nemo.backend, NemotronVLBackend)
    assert nemo.dim == 32  # llm_config.hidden_size (2048 on the real model)
    config = json.loads((checkpoint / "config.json").read_text())
    assert nemotron_vl.accepts(config)
    assert not qwen_omni_model.accepts(config)


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "qwen2_5_omni_thinker", "architectures": ["Qwen2_5OmniThinkerModel"]},
        {
            "model_type": CUSTOM_MODEL_TYPE,
            "architectures": [CUSTOM_MODEL_CLASS],
            "auto_map": {"AutoModel": f"{CUSTOM_MODULE_NAME}.{CUSTOM_MODEL_CLASS}"},
        },
        {  # the sibling reranker: same family, a classifier, not an embedder
            "model_type": "llama_nemotron_vl_rerank",
            "architectures": ["LlamaNemotronVLForSequenceClassification"],
            "auto_map": {"AutoModel": "modeling_llama_nemotron_vl.LlamaNemotronVLForSequenceClassification"},
        },
        {"model_type": "llama_nemotron_vl", "architectures": ["SomethingElse"]},
    ],
)
def test_other_checkpoints_are_not_accepted(config: dict[str, Any]) -> None:
    assert not nemotron_vl.accepts(config)


def test_qwen_tiny_checkpoints_are_not_accepted(native_checkpoint: Path, custom_checkpoint: Path) -> None:
    for folder in (native_checkpoint, custom_checkpoint):
        assert not nemotron_vl.accepts(json.loads((folder / "config.json").read_text()))


@pytest.mark.parametrize("trust", [None, False])
def test_remote_code_must_be_trusted_explicitly(checkpoint: Path, trust: bool | None) -> None:
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        OmniEmbedder.from_pretrained(checkpoint, device="cpu", trust_remote_code=trust)


def test_bad_settings_are_rejected(checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="p_max_length keys"):
        OmniEmbedder.from_pretrained(
            checkpoint, device="cpu", trust_remote_code=True, p_max_length={"audio": 1}
        )


def test_build_is_deterministic_per_seed(tmp_path: Path, reference: Any) -> None:
    from transformers import AutoModel

    same = AutoModel.from_pretrained(
        build_tiny_nemotron_vl_checkpoint(tmp_path / "s0"), trust_remote_code=True
    )
    other = AutoModel.from_pretrained(
        build_tiny_nemotron_vl_checkpoint(tmp_path / "s1", seed=1), trust_remote_code=True
    )
    for a, b in zip(reference.state_dict().values(), same.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(reference.embed_tokens.weight, other.embed_tokens.weight)
    with pytest.raises(FileExistsError):
        build_tiny_nemotron_vl_checkpoint(tmp_path / "s0")


# -- vectors ------------------------------------------------------------------------------------------


def test_queries_match_the_models_own_encode_queries(nemo: OmniEmbedder, reference: Any) -> None:
    queries = ["where is the red car?", "a", "how many pages mention revenue in 2024?"]
    got = nemo.embed_queries(queries)
    assert got.dtype == np.float32 and got.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got, card_queries(reference, queries), atol=ATOL)
    # Queries and documents go through different prompts.
    assert float(got[0] @ nemo.embed_documents([queries[0]])[0]) < 1 - 1e-4


def test_documents_of_every_modality_match_the_model(
    nemo: OmniEmbedder, reference: Any, images: dict[str, Path]
) -> None:
    wide, tall, square = (rgb(images[k]) for k in ("wide", "tall", "square"))
    items: list[Any] = [
        "plain text page",
        Content(image=str(images["wide"])),  # path
        Content(text="caption of the tall page", image=images["tall"]),  # PathLike + text: joint
        "another text chunk, a little longer than the first one",
        {"image": square},  # PIL image
        Content(text="square caption", image=square),
    ]
    got = nemo.embed_documents(items)  # one batch mixing all three modalities
    expected = np.empty_like(got)
    expected[[0, 3]] = card_documents(reference, texts=["plain text page", items[3]])
    expected[[1, 4]] = card_documents(reference, images=[wide, square])
    expected[[2, 5]] = card_documents(
        reference, images=[tall, square], texts=["caption of the tall page", "square caption"]
    )
    np.testing.assert_allclose(got, expected, atol=ATOL)
    # Image+text is one joint vector, neither the image's nor the text's.
    alone = nemo.embed_documents([Content(image=square), "square caption"])
    assert max(float(got[5] @ alone[0]), float(got[5] @ alone[1])) < 1 - 1e-3


def test_order_and_batching_do_not_change_vectors(nemo: OmniEmbedder, images: dict[str, Path]) -> None:
    items: list[Any] = [
        Content(image=str(images["wide"])),
        "short",
        Content(text="joint", image=str(images["square"])),
        "a much longer text document " * 20,
        Content(image=str(images["tall"])),
    ]
    together = nemo.embed_documents(items, batch_size=len(items))
    one_by_one = nemo.embed_documents(items, batch_size=1)
    reversed_order = nemo.embed_documents(items[::-1], batch_size=2)[::-1]
    np.testing.assert_allclose(together, one_by_one, atol=ATOL)
    np.testing.assert_allclose(together, reversed_order, atol=ATOL)


def test_streams_put_text_with_its_image_and_images_alone(
    nemo: OmniEmbedder, images: dict[str, Path]
) -> None:
    items: list[Any] = [
        Content(text="page text", image=str(images["wide"])),
        Content(image=str(images["tall"])),
        "just text",
    ]
    streams = nemo.embed_document_streams(items)
    assert [set(s) for s in streams] == [{"text"}, {"image"}, {"text"}]
    flat = nemo.embed_documents(items)
    np.testing.assert_allclose(streams[0]["text"], flat[0], atol=ATOL)
    np.testing.assert_allclose(streams[1]["image"], flat[1], atol=ATOL)
    np.testing.assert_allclose(streams[2]["text"], flat[2], atol=ATOL)


# -- the card's settings are applied -----------------------------------------------------------------


def test_defaults_are_the_cards(nemo: OmniEmbedder) -> None:
    backend = nemo.backend
    assert isinstance(backend, NemotronVLBackend)
    assert backend.p_max_length == {"text": 8192, "image": 2048, "image_text": 10240}
    assert backend.processor.max_input_tiles == 6
    assert backend.processor.use_thumbnail is True


def test_p_max_length_truncates_text(checkpoint: Path, reference: Any) -> None:
    prefix_tokens = len("passage: ")  # byte-level tokenizer: one token per byte
    short = OmniEmbedder.from_pretrained(
        checkpoint, device="cpu", trust_remote_code=True, p_max_length={"text": prefix_tokens + 12}
    )
    long_text = "abcdefghijkl" + " and a tail the budget cuts off" * 5
    got = short.embed_documents([long_text])[0]
    np.testing.assert_allclose(got, card_documents(reference, texts=[long_text[:12]])[0], atol=ATOL)
    full = card_documents(reference, texts=[long_text])[0]
    assert float(got @ full) < 1 - 1e-3
    # The cap is per modality: image+text keeps its own budget.
    assert short.backend.p_max_length["image_text"] == 10240  # type: ignore[attr-defined]


def test_tiles_and_thumbnail_are_applied(checkpoint: Path, reference: Any, images: dict[str, Path]) -> None:
    few = OmniEmbedder.from_pretrained(
        checkpoint, device="cpu", trust_remote_code=True, max_input_tiles=1, use_thumbnail=False
    )
    wide = rgb(images["wide"])
    got = few.embed_documents([Content(image=wide)])[0]
    np.testing.assert_allclose(
        got, card_documents(reference, images=[wide], max_input_tiles=1, use_thumbnail=False)[0], atol=ATOL
    )
    assert float(got @ card_documents(reference, images=[wide])[0]) < 1 - 1e-3


def test_length_estimate_orders_images_after_short_text(nemo: OmniEmbedder, images: dict[str, Path]) -> None:
    backend = nemo.backend
    text = backend.prepare(Content(text="hi"), kind="document", index=0)
    image = backend.prepare(Content(image=str(images["wide"])), kind="document", index=1)
    joint = backend.prepare(Content(text="hi", image=str(images["wide"])), kind="document", index=2)
    assert text.length == 2
    assert image.length == 4 * (6 + 1)  # tiny model: 4 tokens per tile; 6 tiles + thumbnail
    assert joint.length == image.length + text.length


# -- what the model cannot embed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (Content(audio=np.zeros(16000, dtype=np.float32)), "audio"),
        (Content(video=np.zeros((2, 16, 16, 3), dtype=np.uint8)), "video"),
        (Content(text="narrated", audio=np.zeros(16000, dtype=np.float32)), "audio"),
    ],
)
def test_audio_and_video_documents_are_refused(nemo: OmniEmbedder, item: Content, field: str) -> None:
    with pytest.raises(OmniInputError, match=r"supported: image, text") as info:
        nemo.embed_documents(["fine", item])
    assert info.value.index == 1 and info.value.field == field
    with pytest.raises(OmniInputError, match=r"supported: image, text"):
        nemo.embed_document_streams([item])
    # Nothing falls back silently when the backend is called directly either.
    with pytest.raises(OmniInputError, match=r"supported: image, text"):
        nemo.backend.prepare(item, kind="document", index=0)


def test_image_queries_are_refused(nemo: OmniEmbedder, images: dict[str, Path]) -> None:
    for item in (
        Content(image=str(images["wide"])),
        Content(text="with a picture", image=str(images["wide"])),
    ):
        with pytest.raises(OmniInputError, match=r"does not embed image querys? \(supported: text\)") as info:
            nemo.embed_queries([item])
        assert info.value.field == "image"
        with pytest.raises(OmniInputError, match=r"supported: text"):
            nemo.backend.prepare(item, kind="query", index=0)


def test_skip_keeps_the_good_items(nemo: OmniEmbedder, images: dict[str, Path]) -> None:
    items: list[Any] = [
        "good text",
        Content(audio=np.zeros(16000, dtype=np.float32)),
        Content(image=str(images["square"])),
        Content(video=np.zeros((2, 16, 16, 3), dtype=np.uint8)),
        Content(image=str(images["square"].with_name("missing.png"))),
    ]
    result = nemo.embed_documents(items, errors="skip")
    assert result.ok_indices == [0, 2]
    assert [(f.index, f.field) for f in result.failures] == [(1, "audio"), (3, "video"), (4, "image")]
    np.testing.assert_allclose(
        np.stack([result.embeddings[0], result.embeddings[2]]),  # type: ignore[list-item]
        nemo.embed_documents([items[0], items[2]]),
        atol=ATOL,
    )
    queries = nemo.embed_queries(["ok", Content(image=str(images["wide"]))], errors="skip")
    assert queries.ok_indices == [0] and queries.failures[0].field == "image"


# -- with the store and retriever ----------------------------------------------------------------------


def test_works_unchanged_with_store_and_retriever(nemo: OmniEmbedder, images: dict[str, Path]) -> None:
    from omni_rag.retriever import OmniRetriever
    from omni_rag.store import OmniStore

    store = OmniStore("nemotron_vl")
    retriever = OmniRetriever(nemo, store, k=5)
    items: list[Any] = [
        "the red car is parked outside",
        Content(image=str(images["wide"])),
        Content(text="quarterly revenue table", image=str(images["square"])),
    ]
    added = retriever.add(items, ids=["text", "image", "joint"])
    assert added.added == ["text", "image", "joint"] and not added.failures
    hits = retriever.search("where is the red car?")
    assert {h.id for h in hits} == {"text", "image", "joint"}
    query = nemo.embed_queries(["where is the red car?"])[0]
    documents = dict(zip(["text", "image", "joint"], nemo.embed_documents(items), strict=True))
    for hit in hits:
        assert hit.score == pytest.approx(float(query @ documents[hit.id]), abs=1e-5)
    assert store.get_info()["dim"] == 32
    with pytest.raises(OmniInputError, match="supported: text"):
        retriever.search(Content(image=str(images["wide"])))
