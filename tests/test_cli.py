"""End-to-end tests of the ``omni-rag`` CLI and ``examples/demo.py``, run the way a user runs them.

Each command is a real subprocess of the installed ``omni-rag`` script on a tiny checkpoint
(random weights, real architecture) and a real embedded Qdrant folder, so exit codes, output
and cross-process store locking are what a user gets. A random-weight model ranks nothing
meaningfully, so the assertions are on counts, fields, stream filtering and messages rather
than on which file wins. Every model-loading subprocess costs an interpreter plus torch import
(several seconds), so each one checks as much as stays readable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from omni_rag.cli.render import format_seconds, format_span, render_hits
from omni_rag.store import Hit, OmniStore
from omni_rag.testing.media import make_audio, make_corrupt, make_image, make_video

OMNI_RAG = Path(sys.executable).with_name("omni-rag")
REPO = Path(__file__).resolve().parents[1]
COLLECTION = "docs"
#: The indexable files of the corpus, by name: what the index must add and searches may return.
GOOD = {"clip.mp4", "silent.mp4", "tone.wav", "tone.flac", "picture.png", "notes.txt"}


def start(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    drop_env: Sequence[str] = (),
    cwd: Path | None = None,
    program: Sequence[str] = (str(OMNI_RAG),),
) -> subprocess.Popen[str]:
    """Start a command in this environment (hub offline, from conftest) minus ``drop_env``, plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k not in drop_env and k != "OMNI_RAG_MODEL"}
    full_env.update(env or {})
    return subprocess.Popen(
        [*program, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run(*args: str | os.PathLike[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return finish(start(*args, **options))


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``docs/``: one file per kind (plus a nested folder, a non-media file and a hidden file);
    ``bad/``: a file nothing decodes and an image cut short (probes fine, fails to decode)."""
    root = tmp_path_factory.mktemp("cli")
    docs = root / "docs"
    (docs / "nested").mkdir(parents=True)
    make_video(docs / "clip.mp4", seconds=2.0, audio=True, seed=3)
    make_video(docs / "silent.mp4", seconds=2.0, audio=False, seed=4)
    make_audio(docs / "tone.wav", seconds=1.5, seed=1)
    make_audio(docs / "nested" / "tone.flac", seconds=1.0, sample_rate=44100, freq=550.0, seed=2)
    make_image(docs / "picture.png", size=(80, 60), seed=5)
    (docs / "notes.txt").write_text("Honeybees carry pollen between flowers.\n", encoding="utf-8")
    (docs / "data.bin").write_bytes(bytes(range(256)) * 4)
    (docs / ".hidden.txt").write_text("dotfiles are never indexed", encoding="utf-8")
    bad = root / "bad"
    bad.mkdir()
    make_corrupt(bad / "broken.mp4")
    make_corrupt(bad / "truncated.png", truncate_from=make_image(root / "whole.png", size=(160, 120), seed=6))
    return root


@pytest.fixture(scope="module")
def indexed(corpus: Path, native_checkpoint: Path) -> subprocess.CompletedProcess[str]:
    """The first ``index`` of ``docs/`` into ``store/``; searches and ``info`` read that store."""
    return run(
        "index", corpus / "docs", "-c", COLLECTION, "--store", corpus / "store", "--model", native_checkpoint
    )


#: Each search the tests check: CLI arguments, with ``{docs}`` for the corpus folder.
SEARCHES: dict[str, tuple[str, ...]] = {
    "text-json": ("honeybees and flowers", "--json", "-k", "4"),
    "image-rrf": ("--image", "{docs}/picture.png", "--fusion", "rrf"),
    "audio-dbsf": ("--audio", "{docs}/tone.wav", "--fusion", "dbsf", "--streams", "audio"),
    "video-max": ("--video", "{docs}/silent.mp4", "--fusion", "max", "--streams", "video"),
    "text+audio-mean": (
        "--text",
        "a rising tone",
        "--audio",
        "{docs}/nested/tone.flac",
        "--streams",
        "audio,text",
    ),
    "other-model": ("honeybees",),
}


@pytest.fixture(scope="module")
def searches(
    corpus: Path, indexed: subprocess.CompletedProcess[str], native_checkpoint: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every search in :data:`SEARCHES`, one per CPU at a time (each pays seconds of imports), on
    its own copy of the store, as an embedded Qdrant folder admits one process at a time.
    ``other-model`` runs with another checkpoint (other weights and name) than the index."""
    from omni_rag.testing import build_tiny_checkpoint

    other = build_tiny_checkpoint(corpus / "tiny-other", seed=1)
    commands: dict[str, list[str | os.PathLike[str]]] = {}
    for name, args in SEARCHES.items():
        store = corpus / f"store-{name}"
        shutil.copytree(corpus / "store", store)
        model = other if name == "other-model" else native_checkpoint
        filled = [a.format(docs=corpus / "docs") for a in args]
        commands[name] = ["search", *filled, "-c", COLLECTION, "--store", store, "--model", model]
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    running: dict[str, subprocess.Popen[str]] = {}
    pending = list(commands)
    while pending or running:
        while pending and len(running) < (os.cpu_count() or 1):
            name = pending.pop(0)
            running[name] = start(*commands[name], env={"OMP_NUM_THREADS": "1"})
        name = next(iter(running))  # oldest first: they all take about as long
        results[name] = finish(running.pop(name))
    return results


def table_rows(stdout: str) -> list[list[str]]:
    """Rows of a result table, without its header line."""
    lines = [line.split() for line in stdout.strip().splitlines()]
    assert lines and lines[0][:2] == ["rank", "score"], stdout
    return lines[1:]


def test_index_adds_each_kind_and_skips_non_media(indexed: subprocess.CompletedProcess[str]) -> None:
    assert indexed.returncode == 0, explain(indexed)
    assert (
        f"collection '{COLLECTION}': 6 added, 0 unchanged, 0 duplicates, 1 skipped, 0 failed"
        in indexed.stdout
    )
    assert "6 points in the collection" in indexed.stdout
    assert "data.bin: not an image, audio, video or text file" in indexed.stdout
    assert ".hidden" not in indexed.stdout
    assert "No GPU found" in indexed.stderr  # CPU fallback is announced, not silent


def test_reindex_skips_unchanged_and_reports_bad_files(
    corpus: Path, indexed: subprocess.CompletedProcess[str], native_checkpoint: Path
) -> None:
    missing = corpus / "no_such_folder"
    result = run(
        "index", corpus / "docs", corpus / "bad", missing,
        "-c", COLLECTION, "--store", corpus / "store", "--model", native_checkpoint, "-q",
    )  # fmt: skip
    assert result.returncode == 1, explain(result)
    assert "0 added, 6 unchanged, 0 duplicates, 1 skipped, 3 failed" in result.stdout
    failed = result.stdout.split("failed:\n", 1)[1]
    assert f"{missing}: no such file or directory" in failed
    assert "broken.mp4: not a decodable image, audio or video file" in failed
    assert "truncated.png: image: " in failed and "truncated" in failed.split("truncated.png: ", 1)[1]
    assert "6 points in the collection" in result.stdout  # the good files are all still there


def test_info_counts_points_per_stream(
    corpus: Path, indexed: subprocess.CompletedProcess[str], native_checkpoint: Path
) -> None:
    as_text = run("info", "-c", COLLECTION, "--store", corpus / "store")
    assert as_text.returncode == 0, explain(as_text)
    assert "points:     6" in as_text.stdout
    assert "streams:    text 1, image 1, audio 3, video 2" in as_text.stdout
    assert "dim:        64" in as_text.stdout
    assert f"model:      {native_checkpoint}" in as_text.stdout
    as_json = json.loads(run("info", "-c", COLLECTION, "--store", corpus / "store", "--json").stdout)
    assert as_json["streams"] == {"text": 1, "image": 1, "audio": 3, "video": 2}
    assert as_json["model"]["dim"] == 64


def test_search_text_json_has_every_field(searches: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = searches["text-json"]
    assert result.returncode == 0, explain(result)
    hits = json.loads(result.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert set(hit) >= {"id", "score", "stream_scores", "source", "modalities", "start_s", "end_s"}
        assert Path(hit["source"]).name in GOOD and Path(hit["source"]).is_file()
        assert set(hit["stream_scores"]) <= set(hit["modalities"])
        assert hit["metadata"]["name"] == Path(hit["source"]).name
        assert "text" not in hit["metadata"]  # whole documents stay out of the JSON


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("image-rrf", GOOD),
        ("audio-dbsf", {"clip.mp4", "tone.wav", "tone.flac"}),  # only items with an audio stream
        ("video-max", {"clip.mp4", "silent.mp4"}),
        ("text+audio-mean", {"clip.mp4", "tone.wav", "tone.flac", "notes.txt"}),
    ],
)
def test_search_each_query_modality_and_fusion(
    searches: dict[str, subprocess.CompletedProcess[str]], name: str, expected: set[str]
) -> None:
    result = searches[name]
    assert result.returncode == 0, explain(result)
    rows = table_rows(result.stdout)
    assert {Path(row[-1]).name for row in rows} == expected, result.stdout
    assert [row[0] for row in rows] == [str(i) for i in range(1, len(rows) + 1)]
    scores = [float(row[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    args = SEARCHES[name]
    chosen = args[args.index("--streams") + 1].split(",") if "--streams" in args else None
    header = result.stdout.splitlines()[0].split()
    if chosen:  # one score column per chosen stream, none for the others
        assert header[2:-1] == [s for s in ("text", "image", "audio", "video") if s in chosen]


def test_unknown_collection_store_or_server(corpus: Path, indexed: subprocess.CompletedProcess[str]) -> None:
    result = run("search", "anything", "-c", "nope", "--store", corpus / "store")
    assert result.returncode == 3, explain(result)
    assert f"no collection 'nope' in the store at {corpus / 'store'}; it has: {COLLECTION}" in result.stderr
    result = run("info", "-c", COLLECTION, "--store", corpus / "never_made")
    assert result.returncode == 3, explain(result)
    assert "no store at" in result.stderr
    assert not (corpus / "never_made").exists()  # a lookup must not create an empty store
    result = run("info", "-c", COLLECTION, "--url", "http://127.0.0.1:9")  # nothing listens there
    assert result.returncode == 7, explain(result)
    assert "cannot open the store at http://127.0.0.1:9" in result.stderr


def test_other_model_is_refused(searches: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = searches["other-model"]
    assert result.returncode == 4, explain(result)
    assert f"collection '{COLLECTION}' was indexed with" in result.stderr
    assert "tiny-other" in result.stderr and "Traceback" not in result.stderr


def test_search_while_another_process_holds_the_store(
    corpus: Path, indexed: subprocess.CompletedProcess[str], native_checkpoint: Path
) -> None:
    store = OmniStore(COLLECTION, path=str(corpus / "store"))  # this process holds it, as a writer would
    try:
        args = ("search", "honeybees", "-c", COLLECTION, "--store", corpus / "store")
        result = run(*args, "--model", native_checkpoint, "--json")
    finally:
        store.close()
    assert result.returncode == 0, explain(result)
    hits = json.loads(result.stdout)
    assert hits and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "drop_env", "says"),
    [
        ({"HF_HUB_OFFLINE": "1"}, (), "the hub is off (HF_HUB_OFFLINE=1)"),
        # No HF_HUB_OFFLINE: the connectivity check finds nothing listening and switches to offline.
        (
            {"HF_ENDPOINT": "http://127.0.0.1:9"},
            ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
            "hub is unreachable",
        ),
    ],
    ids=["offline-flag", "hub-down"],
)
def test_default_model_without_hub_fails_fast(
    corpus: Path, tmp_path: Path, env: dict[str, str], drop_env: tuple[str, ...], says: str
) -> None:
    started = time.monotonic()
    result = run(
        "index", corpus / "docs" / "notes.txt", "-c", "hub", "--store", tmp_path / "store",
        env={**env, "HF_HOME": str(tmp_path / "hf")}, drop_env=drop_env,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 6, explain(result)
    assert "cannot load model 'nvidia/omni-embed-nemotron-3b'" in result.stderr
    assert says in result.stderr
    assert "--model PATH" in result.stderr and "OMNI_RAG_MODEL" in result.stderr
    assert "Retrying" not in result.stderr  # no back-off loop against an unreachable hub
    assert "import torch" not in result.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s"  # found before torch is even imported: ~1 s idle


def test_bad_arguments(corpus: Path) -> None:
    result = run("search", "-c", COLLECTION, "--store", corpus / "store")
    assert result.returncode == 2 and "give a query" in result.stderr, explain(result)
    result = run("search", "x", "--streams", "audio,smell", "-c", COLLECTION, "--store", corpus / "store")
    assert result.returncode == 2 and "--streams takes a comma list" in result.stderr, explain(result)


def test_demo_runs_end_to_end(tmp_path: Path, native_checkpoint: Path) -> None:
    started = time.monotonic()
    result = run(
        "--model",
        native_checkpoint,
        cwd=tmp_path,
        program=(sys.executable, str(REPO / "examples" / "demo.py")),
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, explain(result)
    out = result.stdout
    assert "note: dim 64 means a tiny test checkpoint" in out
    assert (
        "collection 'demo': 8 added, 0 unchanged, 0 duplicates, 0 skipped, 0 failed" in out
    )  # README/.py left out
    assert (tmp_path / ".omni-rag").is_dir()
    sections = out.split("\n== ")[1:]
    titles = [s.splitlines()[0] for s in sections]
    assert [t.split(":")[0].split(" (")[0].strip() for t in titles] == [
        "text -> video", "audio -> video", "text -> image", "video only", "audio only", "fused",
    ]  # fmt: skip
    for section in sections:
        lines = section.splitlines()
        assert lines[1].split()[:2] == ["rank", "score"], section
        assert lines[2].split()[0] == "1", section
        assert "expected " in section
    last = out.strip().splitlines()[-1].split("   # ")[0].split()
    assert last == [
        "omni-rag",
        "serve",
        "-c",
        "demo",
        "--store",
        ".omni-rag",
        "--model",
        str(native_checkpoint),
    ]
    print(f"demo with the tiny checkpoint: {elapsed:.1f} s")


def test_render_formats_segments_and_scores() -> None:
    assert [format_seconds(s) for s in (0, 59.4, 750, 3723)] == ["0:00", "0:59", "12:30", "1:02:03"]
    assert format_span(750, 810) == "12:30-13:30"
    assert format_span(None, None) == "" and format_span(5, None) == "0:05-end"
    hits = [
        Hit("a", 0.9, {"source": "/data/talk.mp4", "start_s": 750.0, "end_s": 810.0}, {"audio": 0.9}),
        Hit("b", 0.5, {"metadata": {"path": "/data/notes.md"}}, {"text": 0.5}),
    ]
    lines = render_hits(hits).splitlines()
    assert lines[0].split() == ["rank", "score", "text", "audio", "time", "source"]
    assert lines[1].split() == ["1", "0.9000", "-", "0.900", "12:30-13:30", "/data/talk.mp4"]
    assert lines[2].split() == ["2", "0.5000", "0.500", "-", "/data/notes.md"]
