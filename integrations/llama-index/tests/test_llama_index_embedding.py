"""``OmniEmbedding`` routes every LlamaIndex call to the right omni-rag prompt and input."""

from __future__ import annotations

import threading
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.schema import ImageType
from llama_index.embeddings.omni_rag import OmniEmbedding
from PIL import Image

TEXTS = ["the volcano erupted at dawn", "bake the loaf for thirty minutes", "bees carry pollen"]


def close(actual: Any, expected: Any) -> bool:
    return bool(np.allclose(np.asarray(actual), np.asarray(expected), atol=1e-5))


def test_shares_the_given_embedder(embed_model: OmniEmbedding, embedder: Any) -> None:
    assert isinstance(embed_model, MultiModalEmbedding)
    assert embed_model.embedder is embedder
    assert embed_model.model_name == embedder.model_id
    assert embed_model.class_name() == "OmniEmbedding"
    assert embed_model.to_dict()["class_name"] == "OmniEmbedding"


def test_loads_from_a_model_name(checkpoint: Path, embedder: Any) -> None:
    model = OmniEmbedding(model_name=str(checkpoint), device="cpu", embed_batch_size=3)
    assert model.embedder is not embedder
    assert model.embedder.batch_size == 3
    assert model.model_name == str(checkpoint)
    assert close(model.get_query_embedding("hello"), embedder.embed_queries(["hello"])[0])


def test_text_uses_document_prompt_and_query_uses_query_prompt(
    embed_model: OmniEmbedding, embedder: Any
) -> None:
    text = embed_model.get_text_embedding(TEXTS[0])
    query = embed_model.get_query_embedding(TEXTS[0])
    assert isinstance(text, list) and isinstance(text[0], float) and len(text) == embedder.dim
    assert close(text, embedder.embed_documents([TEXTS[0]])[0])
    assert close(query, embedder.embed_queries([TEXTS[0]])[0])
    assert not close(text, query)


def test_text_batches_match_one_by_one(embed_model: OmniEmbedding, embedder: Any) -> None:
    batch = embed_model.get_text_embedding_batch(TEXTS)  # embed_batch_size=2: two calls
    assert len(batch) == len(TEXTS)
    assert close(batch, embedder.embed_documents(TEXTS))


def test_every_image_type(embed_model: OmniEmbedding, embedder: Any, media: dict[str, Path]) -> None:
    path = media["image"]
    expected = embedder.embed_documents([{"image": str(path)}])[0]
    assert close(embed_model.get_image_embedding(str(path)), expected)
    assert close(embed_model.get_image_embedding(BytesIO(path.read_bytes())), expected)
    assert close(embed_model._get_image_embedding(Image.open(path)), expected)  # type: ignore[arg-type]
    assert not close(embed_model.get_image_embedding(str(media["image2"])), expected)


def test_image_batch(embed_model: OmniEmbedding, media: dict[str, Path]) -> None:
    paths: list[ImageType] = [str(media["image"]), str(media["image2"]), str(media["image"])]
    batch = embed_model.get_image_embedding_batch(paths)
    assert len(batch) == 3
    assert close(batch[0], batch[2]) and not close(batch[0], batch[1])
    assert close(batch[1], embed_model.get_image_embedding(paths[1]))


def test_unsupported_image_type_is_rejected(embed_model: OmniEmbedding) -> None:
    with pytest.raises(TypeError, match="unsupported image type"):
        embed_model.get_image_embedding(42)  # type: ignore[arg-type]


def test_audio_and_video(embed_model: OmniEmbedding, embedder: Any, media: dict[str, Path]) -> None:
    audio, video = str(media["audio"]), str(media["video"])
    assert close(embed_model.get_audio_embedding(audio), embedder.embed_documents([{"audio": audio}])[0])
    wave = np.sin(np.linspace(0, 300, 16000)).astype(np.float32)
    assert close(embed_model.get_audio_embedding(wave), embedder.embed_documents([{"audio": wave}])[0])
    assert close(embed_model.get_video_embedding(video), embedder.embed_documents([{"video": video}])[0])
    window = embed_model.get_video_embedding(video, start_s=0.0, end_s=1.0)
    assert close(window, embedder.embed_documents([{"video": video, "start_s": 0.0, "end_s": 1.0}])[0])
    both = embed_model.get_audio_embeddings([audio, wave])
    assert len(both) == 2 and close(both[1], embed_model.get_audio_embedding(wave))
    assert close(embed_model.get_video_embeddings([video])[0], embed_model.get_video_embedding(video))


@pytest.mark.asyncio
async def test_async_matches_sync_and_runs_off_the_loop(
    embed_model: OmniEmbedding, embedder: Any, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    original = embedder.embed_queries

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(embedder, "embed_queries", spy)
    assert close(await embed_model.aget_query_embedding("q"), original(["q"])[0])
    assert threads and threads[0] != threading.get_ident()

    assert close(await embed_model.aget_text_embedding_batch(TEXTS), embedder.embed_documents(TEXTS))
    image = str(media["image"])
    assert close(await embed_model.aget_image_embedding(image), embed_model.get_image_embedding(image))
    audio, video = str(media["audio"]), str(media["video"])
    assert close(await embed_model.aget_audio_embedding(audio), embed_model.get_audio_embedding(audio))
    assert close(await embed_model.aget_video_embeddings([video]), [embed_model.get_video_embedding(video)])


def test_options_dict_is_model_kwargs_and_the_old_name_warns(checkpoint: Path, embedder: Any) -> None:
    options = {"prompts": {"query": "query: ", "document": "passage: "}}
    with pytest.warns(DeprecationWarning, match=r"embedder_kwargs=\.\.\.\) is deprecated"):
        old = OmniEmbedding(model_name=str(checkpoint), device="cpu", embedder_kwargs=options)
    assert old.model_kwargs == options
    new = OmniEmbedding(embedder=embedder, model_kwargs=options)
    assert new.model_kwargs == options and new.embedder is embedder  # shared, nothing loaded
    with pytest.raises(TypeError, match="not both"):
        OmniEmbedding(embedder=embedder, model_kwargs=options, embedder_kwargs=options)


def test_one_path_where_a_list_is_due_says_pass_a_list(
    embed_model: OmniEmbedding, media: dict[str, Path]
) -> None:
    for call in (
        lambda: embed_model.get_audio_embeddings(str(media["audio"])),  # type: ignore[arg-type]
        lambda: embed_model.get_video_embeddings(str(media["video"])),  # type: ignore[arg-type]
        lambda: embed_model._get_image_embeddings(str(media["image"])),  # type: ignore[arg-type]
        lambda: embed_model._get_text_embeddings("hello"),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match="pass a list"):
            call()
