"""Re-indexing a folder makes the collection match it: moved files keep their vectors under their
new path, deleted files leave, edited files are embedded again, copies are recorded on one point.

Driven through the real ``omni-rag`` command (``search --json``, ``info --json``) and through the
Python folder API (:meth:`OmniRetriever.add_folder`), on a tiny checkpoint and real files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from omni_rag import OmniRetriever
from omni_rag.cli import index_scan, scan_paths
from omni_rag.store import OmniStore
from omni_rag.testing.media import make_audio, make_image
from tests.test_cli import explain, run


def _corpus(folder: Path) -> None:
    folder.mkdir()
    make_audio(folder / "a.wav", seconds=1.0, freq=300.0, seed=1)
    make_audio(folder / "b.wav", seconds=1.0, freq=500.0, seed=2)
    make_image(folder / "p.png", seed=3)
    make_image(folder / "q.png", seed=4)
    for i in range(1, 5):
        (folder / f"t{i}.txt").write_text(f"note number {i} about honeybees")


def _change(folder: Path) -> None:
    """Move 2, delete 2, edit 2, copy 1 to a second path."""
    (folder / "sub").mkdir()
    (folder / "a.wav").rename(folder / "sub" / "a_moved.wav")
    (folder / "t1.txt").rename(folder / "t1_moved.txt")
    (folder / "p.png").unlink()
    (folder / "t2.txt").unlink()
    (folder / "t3.txt").write_text("note number 3, rewritten about wasps")
    make_image(folder / "q.png", seed=40)
    shutil.copy(folder / "b.wav", folder / "sub" / "b_copy.wav")


def _files(folder: Path) -> set[str]:
    return {str(p.resolve()) for p in folder.rglob("*") if p.is_file()}


def _store_paths(store: OmniStore) -> tuple[list[str], dict[str, list[str]]]:
    """Every recorded path (one entry per point and path), and the paths of each point."""
    points = {p.id: p.payload["metadata"]["paths"] for p in store.scroll(with_vectors=False)}
    return [path for paths in points.values() for path in paths], points


def _cli(root: Path, checkpoint: Path, *args: str | Path) -> Any:
    return run(*args, "-c", "m1", "--store", root / "st", "--model", checkpoint)


def test_reindex_follows_the_folder_through_the_cli(tmp_path: Path, native_checkpoint: Path) -> None:
    folder = tmp_path / "m"
    _corpus(folder)
    first = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert first.returncode == 0, explain(first)
    assert "8 added" in first.stdout
    with OmniStore("m1", path=str(tmp_path / "st")) as store:
        before = {p.id: p for p in store.scroll()}
    _change(folder)
    again = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert again.returncode == 0, explain(again)
    summary = again.stdout.splitlines()[0]
    assert "0 added, 3 unchanged, 0 duplicates, 0 skipped, 0 failed" in summary
    assert "2 moved, 2 removed, 2 updated" in summary
    assert f"{folder}/a.wav -> {folder}/sub/a_moved.wav" in again.stdout
    with OmniStore("m1", path=str(tmp_path / "st")) as store:
        recorded, points = _store_paths(store)
        after = {p.id: p for p in store.scroll()}
    assert sorted(recorded) == sorted(_files(folder))  # every file once, nothing gone still listed
    for moved in ("sub/a_moved.wav", "t1_moved.txt"):
        point_id = next(i for i, paths in points.items() if str((folder / moved).resolve()) in paths)
        assert point_id in before  # the same point: its vectors were kept, not embedded again
        for stream, vector in before[point_id].vectors.items():
            assert (after[point_id].vectors[stream] == vector).all()
    copies = next(paths for paths in points.values() if len(paths) == 2)
    assert sorted(Path(p).name for p in copies) == ["b.wav", "b_copy.wav"]

    info = run("info", "--json", "-c", "m1", "--store", tmp_path / "st")
    assert json.loads(info.stdout)["points"] == len(points) == 6
    huge_k = str(2**63 - 1)  # clamped to the point count, not an OverflowError
    hits = _cli(tmp_path, native_checkpoint, "search", "honeybees", "--json", "-k", huge_k)
    assert hits.returncode == 0, explain(hits)
    found = [path for hit in json.loads(hits.stdout) for path in hit["metadata"]["paths"]]
    assert sorted(found) == sorted(_files(folder))
    table = _cli(tmp_path, native_checkpoint, "search", "honeybees", "-k", "100")
    assert "(+1 copy)" in table.stdout


def test_reindex_follows_the_folder_through_the_python_api(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "m"
    _corpus(folder)
    store = OmniStore("m1", path=str(tmp_path / "st"))
    retriever = OmniRetriever(embedder, store)
    first = retriever.add_folder(folder)
    assert len(first.added) == 8 and not first.failures
    _change(folder)
    embedded: list[int] = []
    real = embedder.embed_document_streams

    def counting(items: Any, **kwargs: Any) -> Any:
        items = list(items)
        embedded.append(len(items))
        return real(items, **kwargs)

    monkeypatch.setattr(embedder, "embed_document_streams", counting)
    report = retriever.add_folder(folder)
    monkeypatch.undo()
    assert sum(embedded) == 2  # the two edited files; moved and copied ones are not embedded again
    assert sorted(Path(p).name for p in report.updated) == ["q.png", "t3.txt"]
    assert sorted((Path(a).name, Path(b).name) for a, b in report.moved) == [
        ("a.wav", "a_moved.wav"),
        ("t1.txt", "t1_moved.txt"),
    ]
    assert sorted(Path(p).name for p in report.removed) == ["p.png", "t2.txt"]
    assert sorted(Path(p).name for p in report.unchanged) == ["b.wav", "b_copy.wav", "t4.txt"]
    recorded, _ = _store_paths(store)
    assert sorted(recorded) == sorted(_files(folder)) and store.count() == 6
    hits = retriever.search("honeybees", k=100)
    assert sorted(p for h in hits for p in h.payload["metadata"]["paths"]) == sorted(_files(folder))
    text = next(h for h in hits if h.payload["metadata"]["path"].endswith("t3.txt"))
    assert "wasps" in text.payload["metadata"]["text"]
    again = retriever.add_folder(folder)
    assert (len(again.unchanged), again.moved, again.removed, again.updated) == (7, [], [], [])
    store.close()


def test_copies_record_every_path_and_cross_chunk_copies_are_unchanged(
    tmp_path: Path, native_checkpoint: Path
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    for i in range(1, 9):
        (folder / f"t{i}.txt").write_text(f"distinct text {i}")
    (folder / "z_copy.txt").write_text("distinct text 1")
    first = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert "8 added, 1 unchanged, 0 duplicates" in first.stdout, explain(first)
    assert "duplicates (" not in first.stdout
    with OmniStore("m1", path=str(tmp_path / "st")) as store:
        _, points = _store_paths(store)
    assert sorted(Path(p).name for p in next(ps for ps in points.values() if len(ps) == 2)) == [
        "t1.txt",
        "z_copy.txt",
    ]
    (folder / "t1.txt").unlink()  # one copy deleted: the point stays, with the other path
    second = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert "0 moved, 1 removed, 0 updated" in second.stdout, explain(second)
    (folder / "z_copy.txt").write_text("distinct text 1, changed")  # the last copy changed
    third = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert "1 updated" in third.stdout and "0 added" in third.stdout, explain(third)
    with OmniStore("m1", path=str(tmp_path / "st")) as store:
        recorded, points = _store_paths(store)
        texts = sorted(p.payload["metadata"]["text"] for p in store.scroll(with_vectors=False))
    assert sorted(recorded) == sorted(_files(folder)) and len(points) == 8
    assert "distinct text 1" not in texts and "distinct text 1, changed" in texts


def test_missing_or_empty_root_removes_nothing_and_keep_missing_keeps(
    tmp_path: Path, native_checkpoint: Path
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha note")
    (folder / "b.txt").write_text("beta note")
    assert _cli(tmp_path, native_checkpoint, "index", folder, "-q").returncode == 0
    folder.rename(tmp_path / "elsewhere")  # unmounted / missing
    missing = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert missing.returncode == 1 and "no such file or directory" in missing.stdout, explain(missing)
    assert "0 removed" in missing.stdout
    folder.mkdir()  # an empty mount point
    empty = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert empty.returncode == 1 and "folder is empty (not mounted?)" in empty.stdout, explain(empty)
    assert "0 removed" in empty.stdout
    folder.rmdir()
    (tmp_path / "elsewhere").rename(folder)
    (folder / "b.txt").unlink()
    kept = _cli(tmp_path, native_checkpoint, "index", folder, "-q", "--keep-missing")
    assert kept.returncode == 0 and "0 removed" in kept.stdout, explain(kept)
    with OmniStore("m1", path=str(tmp_path / "st")) as store:
        assert store.count() == 2
    gone = _cli(tmp_path, native_checkpoint, "index", folder, "-q")
    assert "1 removed" in gone.stdout, explain(gone)
    with OmniStore("m1", path=str(tmp_path / "st")) as store:
        assert store.count() == 1


def test_text_is_read_when_embedded_not_at_scan_time(tmp_path: Path, embedder: Any) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "note.txt").write_text("the text at scan time")
    scan = scan_paths([folder])
    (folder / "note.txt").write_text("the text at embed time")
    store = OmniStore("m1", location=":memory:")
    report = index_scan(OmniRetriever(embedder, store), scan, quiet=True)
    assert len(report.added) == 1
    assert [p.payload["metadata"]["text"] for p in store.scroll()] == ["the text at embed time"]


def test_an_unreadable_subfolder_removes_nothing_under_it(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    folder = tmp_path / "m"
    locked = folder / "locked"
    locked.mkdir(parents=True)
    (folder / "ok.txt").write_text("a readable note")
    (locked / "secret.txt").write_text("a note in a folder that becomes unreadable")
    store = OmniStore("m1", location=":memory:")
    retriever = OmniRetriever(embedder, store)
    assert len(retriever.add_folder(folder).added) == 2
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # listing fails as for a folder without read permission
        if Path(str(path)) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = retriever.add_folder(folder)
    monkeypatch.undo()
    assert [(Path(p.path).name, p.reason) for p in report.failures] == [
        ("locked", "cannot read folder: Permission denied")
    ]
    assert report.removed == [] and store.count() == 2
