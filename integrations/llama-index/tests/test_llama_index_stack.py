"""``OmniEmbedding`` inside LlamaIndex's own machinery: Settings, VectorStoreIndex, multi-modal index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.indices import MultiModalVectorStoreIndex
from llama_index.core.schema import ImageDocument, ImageNode
from llama_index.embeddings.omni_rag import OmniEmbedding
from llama_index.vector_stores.qdrant import QdrantVectorStore
from qdrant_client import QdrantClient

TEXTS = ["the volcano erupted at dawn", "bake the loaf for thirty minutes", "bees carry pollen"]


@pytest.fixture
def settings_embed_model(embed_model: OmniEmbedding) -> Iterator[OmniEmbedding]:
    previous = Settings._embed_model
    Settings.embed_model = embed_model
    yield embed_model
    Settings._embed_model = previous


def test_vector_store_index_over_qdrant(settings_embed_model: OmniEmbedding, embedder: Any) -> None:
    assert Settings.embed_model is settings_embed_model
    store = QdrantVectorStore(client=QdrantClient(":memory:"), collection_name="texts")
    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in TEXTS], storage_context=StorageContext.from_defaults(vector_store=store)
    )
    query = "when did the volcano erupt?"
    nodes = index.as_retriever(similarity_top_k=3).retrieve(query)

    # Stored with the document prompt, searched with the query prompt: cosines computed here agree.
    cosine = embedder.embed_documents(TEXTS) @ embedder.embed_queries([query])[0]
    order = np.argsort(-cosine)
    assert [n.node.get_content() for n in nodes] == [TEXTS[i] for i in order]
    assert [n.score for n in nodes] == pytest.approx(cosine[order].tolist(), abs=1e-4)


def test_multimodal_index_with_image_embed_model(
    embed_model: OmniEmbedding, embedder: Any, media: dict[str, Path]
) -> None:
    client = QdrantClient(":memory:")
    images = [str(media["image"]), str(media["image2"])]
    index = MultiModalVectorStoreIndex.from_documents(
        # as SimpleDirectoryReader loads them: LlamaIndex skips nodes without text or metadata
        [Document(text=t) for t in TEXTS]
        + [ImageDocument(image_path=p, metadata={"file_name": Path(p).name}) for p in images],
        storage_context=StorageContext.from_defaults(
            vector_store=QdrantVectorStore(client=client, collection_name="texts"),
            image_store=QdrantVectorStore(client=client, collection_name="images"),
        ),
        embed_model=embed_model,
        image_embed_model=embed_model,
    )
    retriever = index.as_retriever(similarity_top_k=1, image_similarity_top_k=2)

    query = "a colourful picture"
    image_nodes = retriever.text_to_image_retrieve(query)
    cosine = embedder.embed_documents([{"image": p} for p in images]) @ embedder.embed_queries([query])[0]
    order = np.argsort(-cosine)
    assert all(isinstance(n.node, ImageNode) for n in image_nodes)
    assert [n.node.image_path for n in image_nodes] == [images[i] for i in order]  # type: ignore[attr-defined]
    assert [n.score for n in image_nodes] == pytest.approx(cosine[order].tolist(), abs=1e-4)

    # image -> image: the same picture embeds to the same vector, so it comes first at cosine 1.
    same = retriever.image_to_image_retrieve(images[1])
    assert same[0].node.image_path == images[1]  # type: ignore[attr-defined]
    assert same[0].score == pytest.approx(1.0, abs=1e-4)

    mixed = retriever.retrieve(query)
    assert sum(isinstance(n.node, ImageNode) for n in mixed) == 2 and len(mixed) == 3
