"""``OmniRetriever.add_media``: paths become what ``omni-rag index`` makes of them; bad paths are reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omni_rag import Content
from omni_rag.errors import OmniInputError
from omni_rag.indexing import content_id
from omni_rag.retriever import OmniRetriever
from omni_rag.store import OmniStore


def test_bad_paths_are_reported_and_good_items_kept(embedder: Any, media_dir: Path, tmp_path: Path) -> None:
    notes = tmp_path / "data.bin"
    notes.write_bytes(bytes(range(256)) * 4)
    retriever = OmniRetriever(embedder, OmniStore("media", location=":memory:"))
    items = [media_dir / "clip.mp4", tmp_path / "missing.wav", notes, "plain text stays text"]
    result = retriever.add_media(items, errors="skip")
    assert result.added_items == [0, 3]
    assert [(f.index, f.field) for f in result.failures] == [(1, "path"), (2, "path")]
    assert "no such file" in result.failures[0].reason and "not an image" in result.failures[1].reason
    clip = Content(video=str(media_dir / "clip.mp4"), audio=str(media_dir / "clip.mp4"))
    (point,) = retriever.store.get([content_id(clip)])
    assert point is not None and sorted(point.vectors) == ["audio", "video"]  # probed: the soundtrack too
    assert point.payload["metadata"]["name"] == "clip.mp4"
    # the ids of the items, by the caller's indices: what deleting an item by path needs
    assert result.item_ids == {0: content_id(clip), 3: content_id(Content(text="plain text stays text"))}
    assert retriever.delete([result.item_ids[0]]) == 1 and retriever.store.count() == 1
    with pytest.raises(OmniInputError, match="no such file") as raised:
        retriever.add_media(items)
    assert raised.value.index == 1
