"""Small edges of the public API: one item where a list is due, odd limits and vectors, wrong
argument types, and video windows that hold no video. Each fails with a clear, typed error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omni_rag import Content, OmniInputError, OmniRetriever
from omni_rag.errors import MediaError
from omni_rag.media.video import load_video
from omni_rag.store import OmniStore, StoreInputError
from omni_rag.testing.media import make_image, make_video


def test_one_item_where_a_list_is_due_says_pass_a_list(embedder: Any, tmp_path: Path) -> None:
    store = OmniStore("edges", location=":memory:")
    retriever = OmniRetriever(embedder, store)
    for call in (
        lambda: embedder.embed_documents("hello"),
        lambda: embedder.embed_queries(tmp_path / "page.png"),
        lambda: embedder.embed_document_streams({"text": "x"}),
        lambda: retriever.add("hello"),
    ):
        with pytest.raises(TypeError, match="pass a list"):
            call()
    assert store.count() == 0


def test_huge_limits_are_clamped_to_the_point_count() -> None:
    store = OmniStore("edges", location=":memory:")
    store.upsert(["a", "b"], [{"text": np.array([1.0, 0, 0, 0])}, {"text": np.array([0, 1.0, 0, 0])}])
    query = np.array([1.0, 0.5, 0, 0])
    assert [h.id for h in store.search(query, limit=2**62)] == ["a", "b"]
    assert [h.id for h in store.search(query, limit=9223372036854775807, fusion="rrf")] == ["a", "b"]
    groups = store.search_groups(query, limit=2**62, group_size=2**62)
    assert sorted(g.key for g in groups) == ["a", "b"]


def test_denormal_vectors_are_refused() -> None:
    store = OmniStore("edges", location=":memory:", dim=4)
    with pytest.raises(StoreInputError, match="not a normal float32"):
        store.upsert(["tiny"], [{"text": np.array([1e-45, 0, 0, 0], dtype=np.float32)}])
    with pytest.raises(StoreInputError, match="not a normal float32"):
        store.upsert(["tiny"], [{"text": np.array([1e-39, 1e-39, 0, 0], dtype=np.float32)}])
    with pytest.raises(StoreInputError, match="zero"):
        store.upsert(["tiny"], [{"text": np.array([1e-300, 0, 0, 0])}])
    store.upsert(["ok"], [{"text": np.array([1e-19, 0, 0, 0], dtype=np.float32)}])  # norm 1e-19: normal
    with pytest.raises(StoreInputError, match="not a normal float32"):
        store.search(np.array([1e-45, 0, 0, 0], dtype=np.float32))
    assert store.count() == 1


def test_wrong_argument_types_raise_input_errors(embedder: Any) -> None:
    for kwargs in ({"dim": "4"}, {"dim": 4.5}, {"dim": True}, {"write_batch_size": "8"}):
        with pytest.raises(StoreInputError, match=r"must be an int|write_batch_size"):
            OmniStore("edges", location=":memory:", **kwargs)
    store = OmniStore("edges", location=":memory:", dim=4)
    with pytest.raises(StoreInputError, match="not numeric"):
        store.upsert(["a"], [{"text": "abcd"}])  # type: ignore[dict-item]
    store.upsert(["a"], [{"text": np.array([1.0, 0, 0, 0])}])
    with pytest.raises(StoreInputError, match="weights must be numbers"):
        store.search(np.array([1.0, 0, 0, 0]), weights={"text": "a"})  # type: ignore[dict-item]
    with pytest.raises(OmniInputError, match="expected an OmniEmbedder") as bad_embedder:
        OmniRetriever("notembedder", store)  # type: ignore[arg-type]
    assert bad_embedder.value.field == "embedder"
    with pytest.raises(OmniInputError, match="expected an OmniStore") as bad_store:
        OmniRetriever(embedder, "store")  # type: ignore[arg-type]
    assert bad_store.value.field == "store"


def test_video_errors_say_what_is_wrong(tmp_path: Path, embedder: Any) -> None:
    picture = make_image(tmp_path / "page.png", size=(96, 80))
    clip = make_video(tmp_path / "clip.mp4", seconds=4.0, fps=10, size=(64, 48))
    with pytest.raises(MediaError, match=r"not a video: page\.png is a still image"):
        load_video(picture)
    with pytest.raises(MediaError, match=r"the window starts after the video ends \(4.0 s\)"):
        load_video(clip, options={"video_start": 100.0, "video_end": 200.0})
    assert load_video(clip, options={"video_start": 3.0, "video_end": 200.0}).frames.shape[0] >= 2
    with pytest.raises(OmniInputError, match="not a video"):
        embedder.embed_documents([Content(video=str(picture))])
    with pytest.raises(OmniInputError, match=r"starts after the video ends \(4.0 s\)"):
        embedder.embed_documents([Content(video=str(clip), start_s=100.0, end_s=200.0)])
