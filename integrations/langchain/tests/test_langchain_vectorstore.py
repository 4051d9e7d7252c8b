"""``OmniVectorStore`` (LangChain) with the real model: indexing API, filters, fusion, media, models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_omni_rag import OmniEmbeddings, OmniVectorStore
from qdrant_client import QdrantClient, models

from omni_rag.retriever import ModelMismatchError
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import OmniStore
from omni_rag.testing.pytest_plugin import assert_same_points

TEXTS = ["the volcano erupted at dawn", "bake the loaf", "bees carry pollen", "tides follow the moon"]


@pytest.fixture(params=["edge", "qdrant-client"])
def store(request: pytest.FixtureRequest, embeddings: OmniEmbeddings) -> OmniVectorStore:
    if request.param == "edge":
        return OmniVectorStore(embedding=embeddings, collection_name="lc")
    return OmniVectorStore(embedding=embeddings, collection_name="lc", client=QdrantClient(":memory:"))


def _manager() -> InMemoryRecordManager:
    manager = InMemoryRecordManager("omni/lc")
    manager.create_schema()
    return manager


def _docs(*texts: str) -> list[Document]:
    return [Document(page_content=t, metadata={"source": f"s{i}"}) for i, t in enumerate(texts)]


@pytest.mark.parametrize("cleanup", [None, "incremental", "full"])
def test_indexing_api_reindex_unchanged_adds_nothing(store: OmniVectorStore, cleanup: Any) -> None:
    manager = _manager()
    first = index(_docs(*TEXTS), manager, store, cleanup=cleanup, source_id_key="source")
    assert (first["num_added"], first["num_skipped"], first["num_deleted"]) == (4, 0, 0)
    again = index(_docs(*TEXTS), manager, store, cleanup=cleanup, source_id_key="source")
    assert (again["num_added"], again["num_skipped"], again["num_deleted"]) == (0, 4, 0)
    assert store.store.count() == 4


@pytest.mark.parametrize("cleanup", ["incremental", "full"])
def test_indexing_api_change_one_updates_one_deletes_one(store: OmniVectorStore, cleanup: Any) -> None:
    manager = _manager()
    index(_docs(*TEXTS), manager, store, cleanup=cleanup, source_id_key="source")
    changed = _docs(TEXTS[0], "bake the loaf for an hour", *TEXTS[2:])
    result = index(changed, manager, store, cleanup=cleanup, source_id_key="source")
    assert (result["num_added"], result["num_skipped"], result["num_deleted"]) == (1, 3, 1)
    assert store.store.count() == 4
    found = store.similarity_search("bake the loaf for an hour", k=4)
    assert "bake the loaf" not in [d.page_content for d in found]
    assert "bake the loaf for an hour" in [d.page_content for d in found]


def test_full_cleanup_deletes_documents_no_longer_given(store: OmniVectorStore) -> None:
    manager = _manager()
    index(_docs(*TEXTS), manager, store, cleanup="full", source_id_key="source")
    result = index(_docs(*TEXTS[:2]), manager, store, cleanup="full", source_id_key="source")
    assert (result["num_added"], result["num_skipped"], result["num_deleted"]) == (0, 2, 2)
    assert sorted(d.page_content for d in store.similarity_search("x", k=10)) == sorted(TEXTS[:2])


def test_scores_are_the_core_store_search(store: OmniVectorStore, embeddings: OmniEmbeddings) -> None:
    ids = store.add_texts(TEXTS, [{"n": i} for i in range(4)])
    got = store.similarity_search_with_score("what erupted?", k=3)
    hits = store.store.search(np.asarray(embeddings.embed_query("what erupted?")), limit=3)
    assert [d.id for d, _ in got] == [h.id for h in hits] and set(ids) >= {h.id for h in hits}
    assert [s for _, s in got] == pytest.approx([h.score for h in hits])
    assert got[0][0].metadata == {"n": got[0][0].metadata["n"]}


def test_dict_and_qdrant_filters(store: OmniVectorStore) -> None:
    store.add_texts(TEXTS, [{"lang": "en", "n": i, "tags": {"kind": "k" + str(i % 2)}} for i in range(4)])
    assert {d.metadata["n"] for d in store.similarity_search("x", k=4, filter={"n": [1, 3]})} == {1, 3}
    assert {d.metadata["n"] for d in store.similarity_search("x", k=4, filter={"tags": {"kind": "k0"}})} == {
        0,
        2,
    }
    over = models.Filter(must=[models.FieldCondition(key="metadata.n", range=models.Range(gt=1))])
    assert {d.metadata["n"] for d in store.similarity_search("x", k=4, filter=over)} == {2, 3}
    assert store.as_retriever(search_kwargs={"k": 4, "filter": {"n": 2}}).invoke("x")[0].metadata["n"] == 2


def test_fusion_options_reach_the_store(store: OmniVectorStore, media: dict[str, Path]) -> None:
    store.add_texts(TEXTS)
    result = store.add_media([media["image"], media["video"]])
    assert len(result.added) == 2
    audio_only = store.similarity_search("a tone", k=10, streams=["audio"])
    assert [d.metadata["modality"] for d in audio_only] == ["video"]
    query = np.asarray(store.embeddings.embed_query("a tone"))
    weighted = store.similarity_search_with_score("a tone", k=6, weights={"video": 3.0, "audio": 1.0})
    want = store.store.search(query, limit=6, weights={"video": 3.0, "audio": 1.0})
    assert [(d.id, s) for d, s in weighted] == [(h.id, pytest.approx(h.score)) for h in want]
    rrf = store.similarity_search_with_score("a tone", k=6, fusion="rrf")
    rrf_hits = store.store.search(query, limit=6, fusion="rrf")  # equal ranks tie: compared as sets
    assert sorted((round(s, 9), d.id) for d, s in rrf) == sorted((round(h.score, 9), h.id) for h in rrf_hits)
    with pytest.raises(TypeError, match="unexpected search arguments"):
        store.similarity_search("x", top_k=2)


def test_mmr_picks_from_the_fused_candidates(store: OmniVectorStore) -> None:
    store.add_texts([*TEXTS, TEXTS[0]], ids=["a", "b", "c", "d", "a2"])
    relevance = [d.id for d in store.similarity_search(TEXTS[0], k=2)]
    assert set(relevance) == {"a", "a2"}  # the duplicate ranks next to its twin
    diverse = [d.id for d in store.max_marginal_relevance_search(TEXTS[0], k=2, fetch_k=5, lambda_mult=0.1)]
    assert diverse[0] in {"a", "a2"} and diverse[1] not in {"a", "a2"}


@pytest.mark.asyncio
async def test_async_variants_match_sync(store: OmniVectorStore) -> None:
    ids = await store.aadd_texts(TEXTS, ids=["a", "b", "c", "d"])
    assert ids == ["a", "b", "c", "d"]
    assert await store.asimilarity_search("pollen", k=2) == store.similarity_search("pollen", k=2)
    assert await store.amax_marginal_relevance_search("pollen", k=2) == store.max_marginal_relevance_search(
        "pollen", k=2
    )
    await store.adelete(["a"])
    assert [d.id for d in await store.aget_by_ids(["a", "b"])] == ["b"]


def test_from_documents_records_the_model_and_refuses_another(
    tmp_path: Path, embeddings: OmniEmbeddings, embedder: Any
) -> None:
    path = tmp_path / "store"
    store = OmniVectorStore.from_documents(_docs(*TEXTS), embeddings, collection_name="m", path=path)
    assert store.store.get_info()["model_id"] == embedder.model_id
    store.store.close()
    other = OmniVectorStore(DeterministicFakeEmbedding(size=embedder.dim), collection_name="m", path=path)
    with pytest.raises(ModelMismatchError, match="DeterministicFakeEmbedding"):
        other.add_texts(["more"])
    with pytest.raises(ModelMismatchError):
        other.similarity_search("x")
    assert other.store.count() == 4


def test_reserved_text_key_is_refused_naming_the_document(store: OmniVectorStore) -> None:
    with pytest.raises(ValueError, match="document 1: metadata key 'text'"):
        store.add_texts(["a", "b"], [{}, {"text": "clash"}])
    assert store.store.count() == 0


def test_media_points_equal_the_core_retrievers(
    store: OmniVectorStore, embedder: Any, media: dict[str, Path]
) -> None:
    result = store.add_media([media["video"], {"audio": str(media["audio"])}])
    core = OmniStore("core", location=":memory:")
    want = CoreRetriever(embedder, core).add([{"video": str(media["video"]), "audio": str(media["video"])}])
    assert result.added[0] == want.added[0]
    (mine,) = store.store.get([want.added[0]])
    (theirs,) = core.get([want.added[0]])
    assert mine is not None and theirs is not None and sorted(mine.vectors) == ["audio", "video"]
    for stream, vector in theirs.vectors.items():
        np.testing.assert_allclose(mine.vectors[stream], vector, atol=1e-6)
    (doc,) = store.get_by_ids([want.added[0]])
    assert doc.metadata["source"] == str(media["video"].resolve()) and doc.metadata["modality"] == "video"


def test_a_recording_through_the_store_equals_omni_rag_index(
    embeddings: OmniEmbeddings, cli_recording: dict[str, Any]
) -> None:
    store = OmniVectorStore(embedding=embeddings, collection_name="rec")
    result = store.add_media([cli_recording["path"]])
    want = cli_recording["points"]
    assert len(want) == 2 and all("#" in i for i in want), "the CLI cut the recording in two segments"
    assert sorted(result.added) == sorted(want)
    assert_same_points({p.id: p for p in store.store.scroll()}, want)
    segment = store.get_by_ids([min(want)])[0]
    assert segment.metadata["segment_index"] == 0 and segment.metadata["name"] == "talk.mp4"
    # the item's id deletes it whole: its segments carry ids <item id>#<k>
    (item_id,) = result.item_ids.values()
    store.add_texts(["kept"], ids=["other"])
    assert store.delete([item_id]) is True
    assert sorted(p.id for p in store.store.scroll()) == ["other"]
