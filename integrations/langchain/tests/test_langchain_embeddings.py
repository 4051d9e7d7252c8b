"""``OmniEmbeddings`` routes LangChain's calls to the right omni-rag prompt and input."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_omni_rag import OmniEmbeddings
from langchain_qdrant import QdrantVectorStore

TEXTS = ["the volcano erupted at dawn", "bake the loaf for thirty minutes", "bees carry pollen"]


def close(actual: Any, expected: Any) -> bool:
    return bool(np.allclose(np.asarray(actual), np.asarray(expected), atol=1e-5))


def test_shares_the_given_embedder(embeddings: Any, embedder: Any) -> None:
    assert embeddings.embedder is embedder
    assert embeddings.model_name == embedder.model_id
    assert "embedder" not in embeddings.model_dump()


def test_rejects_unknown_options(embedder: Any) -> None:
    with pytest.raises(ValueError, match="model_nam"):
        OmniEmbeddings(model_nam="typo", embedder=embedder)  # type: ignore[call-arg]


def test_documents_and_queries_use_their_prompts(embeddings: OmniEmbeddings, embedder: Any) -> None:
    documents = embeddings.embed_documents(TEXTS)
    assert len(documents) == 3 and isinstance(documents[0][0], float)
    assert close(documents, embedder.embed_documents(TEXTS))
    query = embeddings.embed_query(TEXTS[0])
    assert close(query, embedder.embed_queries([TEXTS[0]])[0])
    assert not close(query, documents[0])
    assert embeddings.embed_documents([]) == []


def test_media(embeddings: OmniEmbeddings, embedder: Any, media: dict[str, Path]) -> None:
    image, audio, video = str(media["image"]), str(media["audio"]), str(media["video"])
    images = embeddings.embed_image([image, str(media["image2"])])
    assert close(images[0], embedder.embed_documents([{"image": image}])[0])
    assert not close(images[0], images[1])
    assert close(embeddings.embed_audio([audio]), embedder.embed_documents([{"audio": audio}]))
    assert close(embeddings.embed_video([video]), embedder.embed_documents([{"video": video}]))
    assert not close(embeddings.embed_audio([video]), embeddings.embed_video([video]))


@pytest.mark.asyncio
async def test_async_runs_off_the_loop(
    embeddings: OmniEmbeddings, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    original = embedder.embed_documents

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(embedder, "embed_documents", spy)
    assert close(await embeddings.aembed_documents(TEXTS), original(TEXTS))
    assert threads and threads[0] != threading.get_ident()
    assert close(await embeddings.aembed_query("q"), embeddings.embed_query("q"))


def test_as_langchain_qdrant_embedding(embeddings: OmniEmbeddings, embedder: Any) -> None:
    store = QdrantVectorStore.from_texts(
        TEXTS,
        embeddings,
        location=":memory:",
        collection_name="texts",
        metadatas=[{"n": i} for i in range(3)],
    )
    query = "when did the volcano erupt?"
    found = store.similarity_search_with_score(query, k=3)

    cosine = embedder.embed_documents(TEXTS) @ embedder.embed_queries([query])[0]
    order = np.argsort(-cosine)
    assert [doc.page_content for doc, _ in found] == [TEXTS[i] for i in order]
    assert [doc.metadata["n"] for doc, _ in found] == order.tolist()
    assert [score for _, score in found] == pytest.approx(cosine[order].tolist(), abs=1e-4)


def test_one_string_where_a_list_is_due_says_pass_a_list(
    embeddings: OmniEmbeddings, media: dict[str, Path]
) -> None:
    calls = [
        lambda: embeddings.embed_documents("hello"),  # type: ignore[arg-type]
        lambda: embeddings.embed_image(str(media["image"])),  # type: ignore[arg-type]
        lambda: embeddings.embed_audio(str(media["audio"])),  # type: ignore[arg-type]
        lambda: embeddings.embed_video(media["video"]),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(TypeError, match=r"must be a list of .*: pass a list"):
            call()
