"""``OmniRetriever`` (LlamaIndex) returns exactly the core retriever's hits, as typed nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import ImageNode, QueryBundle, TextNode
from llama_index.retrievers.omni_rag import OmniRetriever

from omni_rag import Content
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import OmniStore


@pytest.fixture(scope="module")
def core(embedder: Any, media: dict[str, Path]) -> CoreRetriever:
    retriever = CoreRetriever(embedder, OmniStore("llama_index_retriever", location=":memory:"), k=3)
    retriever.add(
        [
            "the volcano erupted at dawn",
            Content(text="bees carry pollen", metadata={"lang": "en"}),
            {"image": str(media["image"])},
            {"audio": str(media["audio"])},
            {"video": str(media["video"]), "audio": str(media["video"]), "start_s": 0.5, "end_s": 1.5},
        ],
        ids=["volcano", "bees", "picture", "tone", "clip"],
    )
    return retriever


def test_text_query_returns_the_core_hits(core: CoreRetriever) -> None:
    nodes = OmniRetriever(core).retrieve("what erupted?")
    hits = core.search("what erupted?")
    assert len(nodes) == core.k == 3
    assert [n.node.node_id for n in nodes] == [h.id for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])


def test_nodes_by_modality(core: CoreRetriever, media: dict[str, Path]) -> None:
    nodes = {n.node.node_id: n for n in OmniRetriever(core, similarity_top_k=5).retrieve("anything")}
    assert set(nodes) == {"volcano", "bees", "picture", "tone", "clip"}

    bees = nodes["bees"].node
    assert type(bees) is TextNode and bees.get_content() == "bees carry pollen"
    assert bees.metadata["lang"] == "en" and bees.metadata["source"] is None
    assert bees.metadata["modality"] == "text" and bees.metadata["modalities"] == ["text"]

    picture = nodes["picture"].node
    assert isinstance(picture, ImageNode)
    assert picture.image_path == str(media["image"]) and picture.metadata["modality"] == "image"
    assert picture.text == f"[image: {media['image']}]"

    clip = nodes["clip"]
    assert type(clip.node) is TextNode
    assert clip.node.metadata["modality"] == "video"
    assert clip.node.metadata["modalities"] == ["audio", "video"]
    assert (clip.node.metadata["start_s"], clip.node.metadata["end_s"]) == (0.5, 1.5)
    assert set(clip.node.metadata["stream_scores"]) == {"audio", "video"}
    assert "[video: " in clip.node.get_content() and "0.5s-1.5s" in clip.node.get_content()
    # bookkeeping stays out of what an LLM reads
    assert "stream_scores" not in clip.node.get_content(metadata_mode="llm")  # type: ignore[arg-type]

    assert nodes["tone"].node.metadata["modality"] == "audio"


def test_image_query_bundle(core: CoreRetriever, media: dict[str, Path]) -> None:
    retriever = OmniRetriever(core, similarity_top_k=5)
    image = str(media["image"])
    nodes = retriever.retrieve(QueryBundle(query_str="", image_path=image))
    hits = core.search(Content(image=image), k=5)
    assert [n.node.node_id for n in nodes] == [h.id for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])

    mixed = retriever.retrieve(QueryBundle(query_str="a noisy picture", image_path=image))
    expected = core.search(Content(text="a noisy picture", image=image), k=5)
    assert [n.score for n in mixed] == pytest.approx([h.score for h in expected])
    assert [n.score for n in mixed] != pytest.approx([n.score for n in nodes])


def test_streams_and_filters_reach_the_core(core: CoreRetriever) -> None:
    audio_only = OmniRetriever(core, similarity_top_k=5, streams=["audio"]).retrieve("a tone")
    assert {n.node.node_id for n in audio_only} == {"tone", "clip"}
    english = OmniRetriever(core, similarity_top_k=5, filters={"metadata.lang": "en"}).retrieve("x")
    assert [n.node.node_id for n in english] == ["bees"]


def test_empty_query_is_rejected(core: CoreRetriever) -> None:
    with pytest.raises(ValueError, match="empty query"):
        OmniRetriever(core).retrieve(QueryBundle(query_str="  "))


@pytest.mark.asyncio
async def test_aretrieve_matches_retrieve(core: CoreRetriever) -> None:
    retriever = OmniRetriever(core)
    nodes = await retriever.aretrieve("pollen")
    assert [(n.node.node_id, n.score) for n in nodes] == [
        (n.node.node_id, n.score) for n in retriever.retrieve("pollen")
    ]
