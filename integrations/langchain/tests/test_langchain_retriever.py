"""``OmniRetriever`` (LangChain) returns the core retriever's hits as Documents, and composes in LCEL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_omni_rag import OmniRetriever

from omni_rag import Content
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import OmniStore


@pytest.fixture(scope="module")
def core(embedder: Any, media: dict[str, Path]) -> CoreRetriever:
    retriever = CoreRetriever(embedder, OmniStore("langchain_retriever", location=":memory:"), k=3)
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


def test_returns_the_core_hits(core: CoreRetriever) -> None:
    docs = OmniRetriever(retriever=core).invoke("what erupted?")
    hits = core.search("what erupted?")
    assert len(docs) == 3
    assert [d.id for d in docs] == [d.metadata["id"] for d in docs] == [h.id for h in hits]
    assert [d.metadata["score"] for d in docs] == pytest.approx([h.score for h in hits])
    assert len(OmniRetriever(retriever=core, k=5).invoke("x", k=2)) == 2


def test_documents_by_modality(core: CoreRetriever, media: dict[str, Path]) -> None:
    docs = {d.id: d for d in OmniRetriever(retriever=core, k=5).invoke("anything")}
    assert docs["bees"].page_content == "bees carry pollen"
    assert docs["bees"].metadata["lang"] == "en" and docs["bees"].metadata["modalities"] == ["text"]
    assert docs["picture"].page_content == f"[image: {media['image']}]"
    assert docs["tone"].page_content == f"[audio: {media['audio']}]"
    clip = docs["clip"]
    assert clip.page_content.startswith(f"[video: {media['video']}]") and "[0.5s-1.5s]" in clip.page_content
    assert clip.metadata["source"] == str(media["video"])
    assert (clip.metadata["start_s"], clip.metadata["end_s"]) == (0.5, 1.5)
    assert clip.metadata["modalities"] == ["audio", "video"]
    assert set(clip.metadata["stream_scores"]) == {"audio", "video"}


def test_search_options_reach_the_core(core: CoreRetriever) -> None:
    audio = OmniRetriever(retriever=core, k=5, streams=["audio"]).invoke("a tone")
    assert {d.id for d in audio} == {"tone", "clip"}
    english = OmniRetriever(retriever=core, k=5, filter={"metadata.lang": "en"}).invoke("x")
    assert [d.id for d in english] == ["bees"]
    with pytest.raises(TypeError, match="unexpected search arguments"):
        OmniRetriever(retriever=core).invoke("x", top_k=1)


@pytest.mark.asyncio
async def test_ainvoke_matches_invoke(core: CoreRetriever) -> None:
    retriever = OmniRetriever(retriever=core)
    assert await retriever.ainvoke("pollen") == retriever.invoke("pollen")


def test_lcel_chain(core: CoreRetriever) -> None:
    def format_docs(docs: list[Document]) -> str:
        return "\n".join(f"{d.metadata['id']}: {d.page_content}" for d in docs)

    def fake_llm(inputs: dict[str, str]) -> str:
        return f"Q: {inputs['question']}\n{inputs['context']}"

    chain = {
        "context": OmniRetriever(retriever=core, k=2) | format_docs,
        "question": RunnablePassthrough(),
    } | RunnableLambda(fake_llm)
    answer = chain.invoke("bees and pollen")
    top = core.search("bees and pollen", k=2)
    assert answer.splitlines()[0] == "Q: bees and pollen"
    assert [line.split(":")[0] for line in answer.splitlines()[1:]] == [h.id for h in top]


def test_k_zero_is_refused_not_replaced(core: CoreRetriever) -> None:
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        OmniRetriever(retriever=core, k=2).invoke("what erupted?", k=0)
