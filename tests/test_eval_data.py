"""Evaluation data loaders: accepted formats and precise ``file:line: reason`` errors."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from omni_rag.eval.data import (
    CorpusItem,
    QueryItem,
    load_corpus,
    load_dataset,
    load_qrels,
    load_queries,
)
from omni_rag.eval.errors import EvalDataError, EvalDataWarning, EvalError


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("v1.mp4", "v1.wav", "q.wav"):
        (folder / name).write_bytes(b"\0")
    return folder


def test_corpus_fields_media_resolution_and_metadata(tmp_path: Path, media: Path) -> None:
    path = _jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "v1", "video": "media/v1.mp4", "audio": "media/v1.wav", "category": "cooking"},
            {"id": 7, "title": "Intro", "text": "hello"},
            "",
            {"_id": "t", "title": "Only a title"},
            {"_id": "u", "video": "https://example.org/v.mp4"},
        ],
    )
    items = load_corpus(path)
    assert [i.id for i in items] == ["v1", "7", "t", "u"]
    assert items[0].video == os.path.join(str(media), "v1.mp4")
    assert os.path.isabs(items[0].audio or "")
    assert items[0].metadata == {"category": "cooking"}
    assert items[0].modalities == ("audio", "video")
    assert items[1].full_text == "Intro hello"
    assert items[2].text is None and items[2].full_text == "Only a title" and items[2].modalities == ("text",)
    assert items[3].video == "https://example.org/v.mp4"
    assert isinstance(items[0], CorpusItem)


def test_queries_text_or_media(tmp_path: Path, media: Path) -> None:
    path = _jsonl(
        tmp_path / "queries.jsonl", [{"_id": "q1", "text": "what?"}, {"_id": "q2", "audio": "media/q.wav"}]
    )
    queries = load_queries(path)
    assert queries == [
        QueryItem(id="q1", text="what?"),
        QueryItem(id="q2", audio=str(media / "q.wav")),
    ]


def test_corpus_errors_name_file_and_line(tmp_path: Path, media: Path) -> None:
    path = _jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "a", "text": "ok"},
            "{not json",
            {"text": "no id"},
            {"_id": "a", "text": "again"},
            {"_id": "empty", "text": "   "},
            {"_id": "m", "video": "media/missing.mp4"},
            {"_id": "n", "text": 3},
            [1, 2],
            {"_id": "x", "id": "y", "text": "t"},
        ],
    )
    with pytest.raises(EvalDataError) as info:
        load_corpus(path)
    by_line = {p.line: p.reason for p in info.value.problems}
    assert set(by_line) == {2, 3, 4, 5, 6, 7, 8, 9}
    assert "invalid JSON" in by_line[2]
    assert "no '_id'" in by_line[3]
    assert "duplicate id 'a' (first on line 1)" in by_line[4]
    assert "empty item" in by_line[5]
    assert "video file not found" in by_line[6] and "missing.mp4" in by_line[6]
    assert "'text' must be a string" in by_line[7]
    assert "JSON object" in by_line[8]
    assert "disagree" in by_line[9]
    assert f"{path}:4: duplicate id" in str(info.value)
    assert isinstance(info.value, EvalError)


def test_missing_media_allowed_when_not_checked(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [{"_id": "m", "video": "nowhere.mp4"}])
    assert load_corpus(path, check_media=False)[0].video == str(tmp_path / "nowhere.mp4")


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="no item"):
        load_corpus(_jsonl(tmp_path / "c.jsonl", [""]))
    with pytest.raises(EvalDataError, match="cannot open"):
        load_queries(tmp_path / "absent.jsonl")
    with pytest.raises(EvalDataError, match="no judgment"):
        load_qrels(_jsonl(tmp_path / "q.tsv", ["query-id\tcorpus-id\tscore"]))


def test_qrels_beir_tsv_and_trec(tmp_path: Path) -> None:
    beir = tmp_path / "qrels.tsv"
    beir.write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td1\t0\nq1\td1\t1\n", encoding="utf-8"
    )
    assert load_qrels(beir) == {"q1": {"d1": 1, "d2": 2}, "q2": {"d1": 0}}
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 1\nq1 Q0 d2 3\n\nq2 0 d9 -1\n", encoding="utf-8")
    assert load_qrels(trec) == {"q1": {"d1": 1, "d2": 3}, "q2": {"d9": -1}}
    headerless = tmp_path / "h.tsv"
    headerless.write_text("q1\td1\t2\n", encoding="utf-8")
    assert load_qrels(headerless) == {"q1": {"d1": 2}}


def test_qrels_errors_name_lines(tmp_path: Path) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\thigh\nq1\td3\nq1\td1\t2\nq1\td4\t0.5\n",
        encoding="utf-8",
    )
    with pytest.raises(EvalDataError) as info:
        load_qrels(path)
    by_line = {p.line: p.reason for p in info.value.problems}
    assert set(by_line) == {3, 4, 5, 6}
    assert "'high' is not an int" in by_line[3]
    assert "3 tab-separated columns" in by_line[4]
    assert "judged 1 on line 2, now 2" in by_line[5]
    bad = tmp_path / "bad.txt"
    bad.write_text("q1 d1\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"bad.txt:1: not"):
        load_qrels(bad)


def _dataset_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    corpus = _jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}])
    queries = _jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "x"}, {"_id": "q3", "text": "z"}])
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tghost\t1\nq2\td2\t1\n", encoding="utf-8")
    return corpus, queries, qrels


def test_unknown_ids_are_errors_by_default(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError) as info:
        load_dataset(*_dataset_files(tmp_path))
    reasons = " ".join(p.reason for p in info.value.problems)
    assert "query 'q2'" in reasons and "document 'ghost'" in reasons


def test_unknown_ids_warn_drop_queries_keep_documents(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_dataset(*_dataset_files(tmp_path), unknown_ids="warn")
    assert len([w for w in caught if issubclass(w.category, EvalDataWarning)]) == 2
    assert dataset.qrels == {"q1": {"d1": 1, "ghost": 1}}
    assert [q.id for q in dataset.judged_queries] == ["q1"]
    assert len(dataset.corpus) == 2
