"""OmniRetriever: embedder + store, end to end on the tiny checkpoint and embedded Qdrant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omni_rag import Content, OmniEmbedder, OmniInputError
from omni_rag.retriever import ModelMismatchError, OmniRetriever, content_id
from omni_rag.store import OmniStore


@pytest.fixture()
def retriever(embedder: OmniEmbedder) -> OmniRetriever:
    return OmniRetriever(embedder, OmniStore("test"))


def test_add_then_search_every_query_modality(retriever: OmniRetriever, media_dir: Path) -> None:
    clip = str(media_dir / "clip.mp4")
    result = retriever.add(
        [
            "lava flows downhill",
            Content(video=clip, audio=clip),
            Content(audio=str(media_dir / "tone.wav")),
            Content(text="a picture", image=str(media_dir / "picture.png")),
        ]
    )
    assert len(result.added) == 4 and not result.failures
    assert retriever.store.count() == 4
    stored = retriever.store.get([result.added[1]])[0]
    assert stored is not None and set(stored.vectors) == {"audio", "video"}
    assert stored.payload["source"] == clip
    for query in (
        "lava",
        Content(audio=str(media_dir / "tone.wav")),
        Content(video=clip),
        Content(image=str(media_dir / "picture.png")),
        Content(text="lava", audio=clip),
    ):
        hits = retriever.search(query, k=4)
        assert len(hits) == 4
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    audio_only = retriever.search("anything", streams=["audio"], k=10)
    assert {h.id for h in audio_only} == {result.added[1], result.added[2]}
    for hit in audio_only:
        assert set(hit.stream_scores) == {"audio"}


def test_document_text_ranks_itself_first(retriever: OmniRetriever) -> None:
    texts = ["the volcano erupted", "bake the bread at 220 degrees", "quarterly revenue rose"]
    added = retriever.add(texts).added
    for text, item_id in zip(texts, added, strict=True):
        vector = retriever.embedder.embed_documents([text])[0]
        assert retriever.store.search(vector, limit=1)[0].id == item_id


def test_re_adding_is_a_no_op(retriever: OmniRetriever, media_dir: Path) -> None:
    items = ["one", Content(audio=str(media_dir / "tone.wav"))]
    first = retriever.add(items)
    second = retriever.add(items)
    assert second.added == [] and second.unchanged == first.added
    assert retriever.store.count() == 2
    assert content_id(Content(text="one")) == first.added[0]


def test_skip_reports_failures_with_original_index(retriever: OmniRetriever) -> None:
    result = retriever.add(["good", Content(audio="/missing.wav"), "", "also good"], errors="skip")
    assert len(result.added) == 2
    assert [(f.index, f.field) for f in result.failures] == [(1, "audio"), (2, "text")]
    with pytest.raises(OmniInputError) as caught:
        retriever.add(["fine", Content(audio="/missing.wav")])
    assert caught.value.index == 1


def test_metadata_and_text_are_stored(retriever: OmniRetriever) -> None:
    [item_id] = retriever.add(["hello"], ids=["doc-1"], metadata=[{"lang": "en"}]).added
    assert item_id == "doc-1"
    hit = retriever.search("hello", filter={"metadata.lang": "en"})[0]
    assert hit.payload["metadata"] == {"lang": "en", "text": "hello"}
    assert retriever.search("hello", filter={"metadata.lang": "fr"}) == []


def test_another_model_is_refused(embedder: OmniEmbedder, tmp_path: Path) -> None:
    store = OmniStore("shared", path=str(tmp_path / "store"))
    OmniRetriever(embedder, store).add(["x"])
    store.set_info({**store.get_info(), "dim": embedder.dim + 1})
    with pytest.raises(ModelMismatchError, match="indexed with"):
        OmniRetriever(embedder, store).search("x")
    store.close()


def test_vectors_match_the_embedder(retriever: OmniRetriever, media_dir: Path) -> None:
    clip = str(media_dir / "clip.mp4")
    [item_id] = retriever.add([Content(text="caption", video=clip)]).added
    stored = retriever.store.get([item_id])[0]
    assert stored is not None
    expected = retriever.embedder.embed_document_streams([Content(text="caption", video=clip)])[0]
    for stream, vector in expected.items():
        np.testing.assert_allclose(stored.vectors[stream], vector, atol=1e-5)


def test_add_result_reports_items(retriever: OmniRetriever) -> None:
    first = retriever.add(["a", "", "b"], errors="skip")
    assert (first.added_items, first.unchanged_items) == ([0, 2], [])
    second = retriever.add(["a", "c"], errors="skip")
    assert (second.added_items, second.unchanged_items) == ([1], [0])


def test_add_refuses_one_bare_item_instead_of_indexing_its_characters(retriever: OmniRetriever) -> None:
    for one in ("hello", Content(text="hello"), {"text": "hello"}):
        with pytest.raises(OmniInputError, match="items must be a list of items"):
            retriever.add(one)  # type: ignore[arg-type]
    assert retriever.store.count() == 0


def test_caller_ids_are_unique_and_free_of_the_segment_marker(retriever: OmniRetriever) -> None:
    with pytest.raises(OmniInputError, match=r"item 1, field 'id': id 'same' repeats item 0's id"):
        retriever.add(["a", "b"], ids=["same", "same"])
    with pytest.raises(OmniInputError, match=r"item 0, field 'id': .*'#'"):
        retriever.add(["a"], ids=["talk#1"])
    assert retriever.store.count() == 0


def test_identical_content_at_two_paths_is_one_point_at_the_first_path(
    retriever: OmniRetriever, media_dir: Path, tmp_path: Path
) -> None:
    first, copy = tmp_path / "first.png", tmp_path / "copy.png"
    first.write_bytes((media_dir / "picture.png").read_bytes())
    copy.write_bytes(first.read_bytes())
    result = retriever.add([Content(image=str(first)), Content(image=str(copy))])
    assert result.added_items == [0] and result.duplicates == {1: 0} and len(result.added) == 1
    assert retriever.store.count() == 1
    assert retriever.store.count(filter={"source": str(first)}) == 1  # still findable by the first path


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_search_k_must_be_positive(retriever: OmniRetriever, k: object) -> None:
    retriever.add(["lava"])
    with pytest.raises(ValueError, match="k must be a positive int"):
        retriever.search("lava", k=k)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be a positive int"):
        retriever.search_grouped("lava", k=k)  # type: ignore[arg-type]
    assert len(retriever.search("lava", k=1)) == 1


def test_a_url_is_downloaded_once_for_all_its_segments_and_streams(
    embedder: OmniEmbedder, media_dir: Path, tmp_path: Path
) -> None:
    import functools
    import http.server
    import threading

    from omni_rag.segments import SegmentPolicy
    from omni_rag.testing.media import make_video

    make_video(tmp_path / "talk.mp4", seconds=6.0, audio=True)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/talk.mp4"
        store = OmniStore("urls")
        result = OmniRetriever(embedder, store).add(
            [Content(video=url, audio=url)], segment=SegmentPolicy(window_s=2, min_segment_s=1)
        )
        assert len(result.added) == 3 and not result.failures
        assert requests == ["/talk.mp4"]  # one download for 3 segments x 2 streams
        points = store.get(result.added)
        assert all(p is not None and p.payload["source"] == url for p in points)  # the URL, not a temp file
    finally:
        server.shutdown()
