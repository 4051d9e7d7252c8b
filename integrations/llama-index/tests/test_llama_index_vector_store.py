"""``OmniVectorStore`` (LlamaIndex) under LlamaIndex's own machinery, with the real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.indices import MultiModalVectorStoreIndex
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import (
    ImageDocument,
    ImageNode,
    MediaResource,
    Node,
    NodeRelationship,
    RelatedNodeInfo,
)
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery
from llama_index.embeddings.omni_rag import OmniEmbedding
from llama_index.vector_stores.omni_rag import OmniVectorStore
from qdrant_client import QdrantClient

from omni_rag.retriever import ModelMismatchError
from omni_rag.segments import SegmentPolicy
from omni_rag.store import OmniStore
from omni_rag.testing.media import make_video
from omni_rag.testing.pytest_plugin import assert_same_points

TEXTS = ["the volcano erupted at dawn", "bake the loaf for thirty minutes", "bees carry pollen", "tides rise"]
SHORT = SegmentPolicy(window_s=2.0, min_segment_s=1.5)


@pytest.fixture(params=["edge", "qdrant-client"])
def store(request: pytest.FixtureRequest, embed_model: OmniEmbedding) -> OmniVectorStore:
    client = {"client": QdrantClient(":memory:")} if request.param == "qdrant-client" else {}
    return OmniVectorStore(collection_name="li", embed_model=embed_model, segment=SHORT, **client)


def _index(store: OmniVectorStore, embed_model: OmniEmbedding, docs: list[Document]) -> VectorStoreIndex:
    context = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex.from_documents(docs, storage_context=context, embed_model=embed_model)


def _docs() -> list[Document]:
    return [Document(text=t, doc_id=f"doc{i}", metadata={"n": i}) for i, t in enumerate(TEXTS)]


def test_index_retriever_returns_the_core_search(store: OmniVectorStore, embed_model: OmniEmbedding) -> None:
    index = _index(store, embed_model, _docs())
    query = "when did the volcano erupt?"
    got = index.as_retriever(similarity_top_k=3).retrieve(query)
    hits = store.client.search(np.asarray(embed_model.get_query_embedding(query)), limit=3)
    assert [n.node.node_id for n in got] == [h.id for h in hits]
    assert [n.score for n in got] == pytest.approx([h.score for h in hits])
    assert [n.node.get_content() for n in got] == [h.payload["metadata"]["text"] for h in hits]
    for scored in got:  # each node reads back as it was written: text, document, metadata
        n = TEXTS.index(scored.node.get_content())
        assert scored.node.ref_doc_id == f"doc{n}" and scored.node.metadata == {"n": n}


def test_filters_node_ids_doc_ids_and_fusion_kwargs(
    store: OmniVectorStore, embed_model: OmniEmbedding
) -> None:
    index = _index(store, embed_model, _docs())
    filters = MetadataFilters(filters=[MetadataFilter(key="n", value=2, operator=">=")])  # type: ignore[arg-type]
    found = index.as_retriever(similarity_top_k=4, filters=filters).retrieve("anything")
    assert sorted(n.node.metadata["n"] for n in found) == [2, 3]
    vector = embed_model.get_query_embedding("x")
    only = store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=4, doc_ids=["doc1", "doc3"]))
    assert sorted(n.ref_doc_id or "" for n in only.nodes or []) == ["doc1", "doc3"]
    nothing = index.as_retriever(vector_store_kwargs={"streams": ["audio"]}).retrieve("x")
    assert nothing == []
    with pytest.raises(TypeError, match="unexpected query arguments"):
        index.as_retriever(vector_store_kwargs={"top": 1}).retrieve("x")
    with pytest.raises(ValueError, match="mmr"):
        index.as_retriever(vector_store_query_mode="mmr").retrieve("x")


def test_insert_delete_ref_doc_get_nodes_delete_nodes_clear(
    store: OmniVectorStore, embed_model: OmniEmbedding
) -> None:
    index = _index(store, embed_model, _docs())
    index.insert(Document(text="a second volcano", doc_id="doc9"))
    assert store.client.count() == 5
    index.delete_ref_doc("doc9")
    assert store.client.count() == 4
    nodes = store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="n", value=1)]))
    assert [n.get_content() for n in nodes] == [TEXTS[1]]
    store.delete_nodes(node_ids=[nodes[0].node_id])
    assert store.client.count() == 3 and store.get_nodes(node_ids=[nodes[0].node_id]) == []
    store.clear()
    assert store.client.count() == 0


def test_delete_ref_doc_removes_a_recordings_segments(
    store: OmniVectorStore, embed_model: OmniEmbedding, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "talk.mp4", seconds=5.0, fps=4, size=(48, 32), audio=True, seed=2)
    index = _index(store, embed_model, _docs())
    talk = Node(
        id_="talk",
        video_resource=MediaResource(path=video),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-talk")},
    )
    store.add([talk])
    segments = store.get_nodes(node_ids=["talk"])
    assert len(segments) >= 2 and store.client.count() == 4 + len(segments)
    assert {tuple(sorted(p.vectors)) for p in store.client.scroll() if "#" in p.id} == {("audio", "video")}
    assert sorted(n.metadata["segment_index"] for n in segments) == list(range(len(segments)))
    assert {n.node_id for n in segments} == {f"talk#{k}" for k in range(len(segments))}
    index.delete_ref_doc("doc-talk")
    assert store.client.count() == 4 and store.get_nodes(node_ids=["talk"]) == []


def test_multimodal_index_one_store_two_streams(
    embed_model: OmniEmbedding, embedder: Any, media: dict
) -> None:
    shared = OmniStore("mm", location=":memory:")
    images = [str(media["image"]), str(media["image2"])]
    index = MultiModalVectorStoreIndex.from_documents(
        [Document(text=t) for t in TEXTS]
        + [ImageDocument(image_path=p, metadata={"file_name": Path(p).name}) for p in images],
        storage_context=StorageContext.from_defaults(
            vector_store=OmniVectorStore(store=shared, streams=["text"], embed_model=embed_model),
            image_store=OmniVectorStore(store=shared, streams=["image"], embed_model=embed_model),
        ),
        embed_model=embed_model,
        image_embed_model=embed_model,
    )
    streams = {tuple(sorted(p.vectors)) for p in shared.scroll()}
    assert shared.count() == 6 and streams == {("text",), ("image",)}
    assert shared.count({"modalities": ["image"]}) == 2
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=2)
    query = "a colourful picture"
    image_nodes = retriever.text_to_image_retrieve(query)
    cosine = embedder.embed_documents([{"image": p} for p in images]) @ embedder.embed_queries([query])[0]
    order = np.argsort(-cosine)
    assert all(isinstance(n.node, ImageNode) for n in image_nodes)
    assert [n.node.image_path for n in image_nodes] == [images[i] for i in order]  # type: ignore[attr-defined]
    assert [n.score for n in image_nodes] == pytest.approx(cosine[order].tolist(), abs=1e-4)
    mixed = retriever.retrieve(query)
    assert sum(isinstance(n.node, ImageNode) for n in mixed) == 2 and len(mixed) == 4


def test_ingestion_pipeline_upserts_rerun_adds_nothing(
    store: OmniVectorStore, embed_model: OmniEmbedding
) -> None:
    def pipeline() -> IngestionPipeline:
        return IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), embed_model],
            vector_store=store,
            docstore=docstore,
            docstore_strategy=DocstoreStrategy.UPSERTS,
        )

    docstore = SimpleDocumentStore()
    assert len(pipeline().run(documents=_docs())) == 4
    assert pipeline().run(documents=_docs()) == [] and store.client.count() == 4
    changed = _docs()
    changed[1] = Document(text="bake the loaf for an hour", doc_id="doc1", metadata={"n": 1})
    assert len(pipeline().run(documents=changed)) == 1
    texts = sorted(n.get_content() for n in store.get_nodes())
    assert store.client.count() == 4 and "bake the loaf for an hour" in texts and TEXTS[1] not in texts


def test_query_engine_and_async(store: OmniVectorStore, embed_model: OmniEmbedding) -> None:
    index = _index(store, embed_model, _docs())
    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=2).query("volcano")
    hits = store.client.search(np.asarray(embed_model.get_query_embedding("volcano")), limit=2)
    assert [n.node.node_id for n in response.source_nodes] == [h.id for h in hits]


@pytest.mark.asyncio
async def test_async_variants(store: OmniVectorStore, embed_model: OmniEmbedding) -> None:
    index = _index(store, embed_model, _docs())
    sync = await index.as_retriever(similarity_top_k=2).aretrieve("pollen")
    assert [n.node.node_id for n in sync] == [
        n.node.node_id for n in index.as_retriever(similarity_top_k=2).retrieve("pollen")
    ]
    await store.adelete("doc2")
    assert len(await store.aget_nodes()) == 3
    await store.adelete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="n", value=3)]))
    assert store.client.count() == 2
    await store.aclear()
    assert store.client.count() == 0


def test_another_model_is_refused(tmp_path: Path, embed_model: OmniEmbedding, custom_embedder: Any) -> None:
    first = OmniVectorStore(collection_name="m", path=tmp_path, embed_model=embed_model)
    _index(first, embed_model, _docs()[:1])
    first.client.close()
    other_model = OmniEmbedding(embedder=custom_embedder)
    other = OmniVectorStore(collection_name="m", path=tmp_path, embed_model=other_model)
    with pytest.raises(ModelMismatchError):
        _index(other, other_model, _docs()[1:2])
    assert other.client.count() == 1


def test_a_recording_through_the_store_equals_omni_rag_index(
    embed_model: OmniEmbedding, cli_recording: dict[str, Any]
) -> None:
    want = cli_recording["points"]
    assert len(want) == 2 and all("#" in i for i in want), "the CLI cut the recording in two segments"
    store = OmniVectorStore(collection_name="rec", embed_model=embed_model)
    result = store.add_media([cli_recording["path"]])
    assert sorted(result.added) == sorted(want)
    assert_same_points({p.id: p for p in store.client.scroll()}, want)
    first = min(want)
    assert [n.node_id for n in store.get_nodes(node_ids=[first])] == [first]
    store.delete_nodes(node_ids=[first])
    assert sorted(p.id for p in store.client.scroll()) == [max(want)]
    # the item's id names all of it (its segments' ids are <item id>#<k>)
    (item_id,) = result.item_ids.values()
    store.add_media([cli_recording["path"]])
    assert sorted(n.node_id for n in store.get_nodes(node_ids=[item_id])) == sorted(want)
    near = VectorStoreQuery(
        query_embedding=embed_model.get_text_embedding("a talk"), similarity_top_k=10, node_ids=[item_id]
    )
    # a query restricted to the item searches its segments
    assert sorted(store.query(near).ids) == sorted(want)
    store.delete_nodes(node_ids=[item_id])
    assert store.client.count() == 0

    # the same file as a LlamaIndex node: the node's id, the CLI's segments and vectors
    as_node = OmniVectorStore(collection_name="node", embed_model=embed_model)
    as_node.add([Node(id_="talk", video_resource=MediaResource(path=cli_recording["path"]))])
    renamed = {p.id.replace("talk#", ""): p for p in as_node.client.scroll()}
    assert_same_points(renamed, {i.split("#")[1]: p for i, p in want.items()})
    assert sorted(n.node_id for n in as_node.get_nodes()) == ["talk#0", "talk#1"]
