"""``index --ray``: a local Ray (2 CPUs, 2 actors, tiny checkpoint) indexes a mixed folder into
exactly the points a single-process run writes, reports the same failures, loses nothing when an
actor dies, and a re-run adds nothing."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from omni_rag.cli import main
from omni_rag.cli.files import scan_paths
from omni_rag.cli.index import index_scan
from omni_rag.cli.index_ray import index_scan_ray
from omni_rag.cli.report import IndexReport
from omni_rag.distributed import ModelSpec, RayOptions
from omni_rag.distributed.driver import write_outcomes
from omni_rag.distributed.worker import CRASH_AFTER_ENV, ChunkEmbedder, ChunkOutcome
from omni_rag.indexing import begin_add
from omni_rag.retriever import OmniRetriever
from omni_rag.segments import SegmentPolicy
from omni_rag.store import OmniStore
from omni_rag.testing.media import make_audio, make_corrupt, make_image, make_video

#: Small windows so a 7 s video becomes 3 segments: (0, 2), (2, 4), (4, 7) (a 1 s tail is merged).
POLICY = SegmentPolicy(window_s=2.0, min_segment_s=1.5)
OPTIONS = RayOptions(actors=2, gpus_per_actor=0, items_per_group=8)


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One small local Ray for the module: 2 CPUs, no dashboard."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images, a wav, an mp4 with sound, a long video that gets segmented, two corrupt files."""
    root = tmp_path_factory.mktemp("mixed")
    make_image(root / "a.png", size=(64, 48), seed=1)
    make_image(root / "b.png", size=(48, 64), seed=2)
    make_audio(root / "tone.wav", seconds=1.5, sample_rate=16000, freq=330.0, seed=3)
    make_video(root / "clip.mp4", seconds=1.5, fps=4, size=(48, 32), audio=True, seed=4)
    make_video(root / "long.mp4", seconds=7.0, fps=4, size=(48, 32), audio=True, seed=5)
    make_corrupt(root / "broken.mp4", seed=6)  # fails the scan (nothing can probe it)
    make_corrupt(root / "cut.wav", truncate_from=root / "tone.wav")  # probes, fails on the actor
    return root


@pytest.fixture(scope="module")
def local(folder: Path, embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What single-process indexing (the CLI's ``index_scan``) writes and reports."""
    store = OmniStore("mixed", path=tmp_path_factory.mktemp("local-store"))
    report = index_scan(OmniRetriever(embedder, store), scan_paths([folder]), quiet=True, policy=POLICY)
    points = _points(store)
    store.close()
    return {"report": report, "points": points}


def _points(store: OmniStore) -> dict[str, Any]:
    return {p.id: p for p in store.scroll()}


def _index_ray(store: OmniStore, folder: Path, checkpoint: Path) -> IndexReport:
    spec = ModelSpec(str(checkpoint), device="cpu")  # actors load the tiny checkpoint from disk
    return index_scan_ray(store, scan_paths([folder]), spec, OPTIONS, quiet=True, policy=POLICY)


def _assert_same_points(got: dict[str, Any], want: dict[str, Any], *, payloads: bool = True) -> None:
    assert sorted(got) == sorted(want)
    for point_id, expected in want.items():
        point = got[point_id]
        assert point.payload == expected.payload or not payloads, point_id
        assert sorted(point.vectors) == sorted(expected.vectors), point_id
        for stream, vector in expected.vectors.items():
            other = point.vectors[stream]
            cosine = float(np.dot(vector, other) / (np.linalg.norm(vector) * np.linalg.norm(other)))
            assert 1.0 - cosine <= 1e-6, (point_id, stream, cosine)


@pytest.fixture(scope="module")
def ray_run(
    ray_session: None, folder: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One Ray run over the folder in which the first actor to finish a chunk dies before returning
    it (the test hook: a real process exit), then a second run over the same folder.

    One run serves both acceptance tests: starting actors is most of a run's time on 2 cores.
    """
    before = set(Path(tempfile.gettempdir()).glob("omni-rag-crash-*/fired"))
    store = OmniStore("mixed", path=tmp_path_factory.mktemp("ray-store"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CRASH_AFTER_ENV, "1")
        report = _index_ray(store, folder, checkpoint)
    fired = set(Path(tempfile.gettempdir()).glob("omni-rag-crash-*/fired")) - before
    points, info = _points(store), store.get_info()
    again = _index_ray(store, folder, checkpoint)
    total = store.count()
    store.close()
    return {"report": report, "points": points, "info": info, "fired": fired, "again": again, "total": total}


def test_ray_writes_what_a_local_run_writes(
    ray_run: dict[str, Any], local: dict[str, Any], checkpoint: Path
) -> None:
    want = local["points"]
    segments = [i for i in want if "#" in i]
    assert len(segments) == 3 and len(want) == 4 + 3  # 2 images, wav, clip, 3 segments of long.mp4
    _assert_same_points(ray_run["points"], want)
    report, expected = ray_run["report"], local["report"]
    assert sorted(report.added) == sorted(expected.added) and len(report.added) == 5
    assert [(f.path, f.reason) for f in report.failures] == [(f.path, f.reason) for f in expected.failures]
    assert [Path(f.path).name for f in report.failures] == ["broken.mp4", "cut.wav"]
    assert "truncated audio" in report.failures[1].reason  # failed on an actor, reported as locally
    assert ray_run["info"]["model_id"] == str(checkpoint)

    again = ray_run["again"]  # the re-run adds nothing
    assert again.added == [] and sorted(again.unchanged) == sorted(expected.added)
    assert ray_run["total"] == len(want)


def test_a_dead_actor_loses_and_duplicates_nothing(ray_run: dict[str, Any], local: dict[str, Any]) -> None:
    assert len(ray_run["fired"]) == 1  # an actor really died mid-run, with a chunk's result unsent
    added = ray_run["report"].added
    assert sorted(added) == sorted(local["report"].added) and len(added) == len(set(added))
    assert sorted(ray_run["points"]) == sorted(local["points"])  # every good file's points, once


def test_driver_writes_each_chunk_once_and_fails_the_lost_ones(
    folder: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """The driver's bookkeeping, fed real outcomes of the actor class run in this process: a chunk
    delivered twice (a retried task) is written once; when the pipeline dies, the chunks it never
    returned fail their files with the reason instead of vanishing."""
    items = [item.content for item in scan_paths([folder]).items]
    with OmniStore("mixed", path=tmp_path / "store") as store:
        run = begin_add(store, items, policy=POLICY, errors="skip")
        chunks = run.chunks(8)
        assert len(chunks) >= 3
        actor = ChunkEmbedder(ModelSpec(str(checkpoint), device="cpu"))

        def outcomes() -> Iterator[ChunkOutcome]:
            first = actor.embed(0, chunks[0])
            yield first
            yield first
            yield from (actor.embed(i, chunks[i]) for i in range(1, len(chunks) - 1))
            raise RuntimeError("node lost")

        result = write_outcomes(run, chunks, outcomes(), quiet=True)
        lost = {p.item_index for p in chunks[-1]}
        assert result.crashed == dict.fromkeys(lost, "not embedded: RuntimeError: node lost")
        assert not lost & set(result.added_items)
        failed = {f.index for f in result.failures}  # cut.wav: refused on the "actor"
        expected = [p.point_id for chunk in chunks[:-1] for p in chunk if p.item_index not in failed]
        assert sorted(result.added) == sorted(expected)  # the twice-delivered chunk: once
        assert store.count() == len(expected)


def test_cli_ray_flag_indexes_and_reports(
    ray_session: None,
    folder: Path,
    checkpoint: Path,
    local: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A clean run through the CLI, one actor, default policy: copies of short files get the same
    ids as the originals (content hashes) and the same vectors, whatever they are batched with."""
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a.png", "tone.wav", "clip.mp4", "broken.mp4"):
        shutil.copy(folder / name, files)
    store = tmp_path / "cli-store"
    argv = ["index", str(files), "-c", "mixed", "--store", str(store), "--model", str(checkpoint)]
    code = main([*argv, "--device", "cpu", "--ray", "--ray-actors", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1  # broken.mp4 failed; the others were indexed
    assert "3 added" in out and "broken.mp4" in out and "not a decodable image, audio or video file" in out
    with OmniStore("mixed", path=store) as opened:
        got = _points(opened)
    assert len(got) == 3 and set(got) <= set(local["points"])
    _assert_same_points(got, {i: local["points"][i] for i in got}, payloads=False)  # sources differ


def test_cli_without_ray_installed_says_how_to_install(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray.data", None)  # what `import ray.data` sees without ray
    code = main(["index", str(folder), "-c", "x", "--store", str(tmp_path / "s"), "--ray"])
    assert code == 2
    assert "pip install 'omni-rag[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before the store was opened


def test_ray_options_size_the_pool() -> None:
    assert RayOptions().pool({"CPU": 8.0}) == (1, 0.0)
    assert RayOptions().pool({"CPU": 8.0, "GPU": 4.0}) == (4, 1.0)
    assert RayOptions(gpus_per_actor=0.5).pool({"GPU": 2.0}) == (4, 0.5)
    assert RayOptions(actors=3, gpus_per_actor=0).pool({"GPU": 2.0}) == (3, 0.0)
    with pytest.raises(ValueError, match="actors"):
        RayOptions(actors=0)
