"""The evaluation runner and ``omni-rag eval``, end to end on the tiny checkpoint.

The tiny model has random weights, so nothing here checks that retrieval is *good*. What must
hold regardless of the weights is checked instead: identical text and identical frames are each
other's nearest neighbours (measured margins on this checkpoint: cosine 0.99 vs 0.93 for text,
0.998 vs 0.89 for video), every stream filter returns exactly the items that have the stream,
every run score equals the cosine (or the mean of cosines) recomputed with numpy from the vectors
the embedder returned, and every item is embedded exactly once however many configurations run.
The tiny audio tower maps every sound to nearly the same vector (cosines 0.996-0.997), so no
audio *ranking* is asserted, only which items the audio stream returns.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omni_rag.cli.errors import CliError, ExitCode
from omni_rag.cli.eval import add_parser, parse_ks, run_eval
from omni_rag.eval import (
    ABLATION,
    ABLATION_CONFIGS,
    EmbeddingError,
    EvalDataset,
    EvalError,
    Evaluation,
    evaluate,
    load_dataset,
    load_results,
    run_evaluation,
    single_configuration,
)
from omni_rag.eval.report import AUDIO_ONLY, AV_JOINT, AV_SEPARATE, DBSF, RRF, TEXT, VIDEO_ONLY
from omni_rag.testing.media import make_audio, make_corrupt, make_video

TEXTS = (
    "honeybees carry pollen between flowers",
    "the chef adds flour to the eggs",
    "a rocket launches at dawn",
)
VIDEOS = ("v0", "v1", "v2", "v3")
TEXT_DOCS = ("t0", "t1", "t2")
AUDIO_DOCS = ("a0",)
#: Items with an audio stream: the videos (soundtrack) and the audio file.
AUDIO_ITEMS = {*VIDEOS, *AUDIO_DOCS}
TEXT_QUERIES = ("qt0", "qt1", "qt2")
VIDEO_QUERIES = ("qv0", "qv1", "qv2")
JUDGED = (*TEXT_QUERIES, *VIDEO_QUERIES, "qa0")
KS = (1, 10)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 text docs, 4 videos with soundtracks (``audio`` = the same mp4), 1 audio file; queries that
    repeat a document's text, frames or sound; one unjudged query that must never be embedded."""
    root = tmp_path_factory.mktemp("evalset")
    media = root / "media"
    media.mkdir()
    for i in range(len(VIDEOS)):
        make_video(
            media / f"v{i}.mp4", seconds=1.0, fps=4, size=(32, 32), audio=True, seed=i, freq=200 + 90 * i
        )
    make_audio(media / "a0.wav", seconds=1.0, seed=10, freq=300.0)
    corpus = [{"_id": f"t{i}", "text": text} for i, text in enumerate(TEXTS)]
    corpus += [
        {"_id": f"v{i}", "video": f"media/v{i}.mp4", "audio": f"media/v{i}.mp4"} for i in range(len(VIDEOS))
    ]
    corpus += [{"_id": "a0", "audio": "media/a0.wav", "category": "tone"}]
    queries = [{"_id": f"qt{i}", "text": text} for i, text in enumerate(TEXTS)]
    queries += [{"_id": f"qv{i}", "video": f"media/v{i}.mp4"} for i in range(len(VIDEO_QUERIES))]
    queries += [{"_id": "qa0", "audio": "media/a0.wav"}, {"_id": "unjudged", "text": "never asked"}]
    _write_jsonl(root / "corpus.jsonl", corpus)
    _write_jsonl(root / "queries.jsonl", queries)
    qrels = [f"qt{i}\tt{i}\t1" for i in range(3)] + [f"qv{i}\tv{i}\t1" for i in range(3)] + ["qa0\ta0\t1"]
    (root / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n", encoding="utf-8"
    )
    return root


@pytest.fixture(scope="module")
def dataset(data_dir: Path) -> EvalDataset:
    return load_dataset(data_dir / "corpus.jsonl", data_dir / "queries.jsonl", data_dir / "qrels.tsv")


@dataclass
class Recorded:
    """What one embedder method was given and returned, call by call."""

    inputs: list[list[Any]]
    outputs: list[Any]

    @property
    def items(self) -> int:
        return sum(len(items) for items in self.inputs)


@contextlib.contextmanager
def recording(embedder: Any) -> Iterator[dict[str, Recorded]]:
    """Wrap the real embedder's methods to record inputs and outputs (the model still runs)."""
    records = {
        name: Recorded([], []) for name in ("embed_document_streams", "embed_documents", "embed_queries")
    }

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(items: Any, **kwargs: Any) -> Any:
            items = list(items)
            out = method(items, **kwargs)
            records[name].inputs.append(items)
            records[name].outputs.append(out)
            return out

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for name in records:
            patch.setattr(embedder, name, wrap(name, getattr(embedder, name)))
        yield records


@pytest.fixture(scope="module")
def ablation(embedder: Any, dataset: EvalDataset) -> tuple[Evaluation, dict[str, Recorded]]:
    with recording(embedder) as records:
        evaluation = run_evaluation(embedder, dataset, ks=KS, k_retrieve=20)
    return evaluation, records


def _vectors(
    dataset: EvalDataset, records: dict[str, Recorded]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Per-stream, joint and query vectors as the embedder returned them, keyed by id."""
    streams = [entry for out in records["embed_document_streams"].outputs for entry in out.embeddings]
    joint = [vector for out in records["embed_documents"].outputs for vector in out.embeddings]
    queries = [vector for out in records["embed_queries"].outputs for vector in out.embeddings]
    return (
        dict(zip([d.id for d in dataset.corpus], streams, strict=True)),
        dict(zip(VIDEOS, joint, strict=True)),
        dict(zip([q.id for q in dataset.judged_queries], queries, strict=True)),
    )


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_corpus_joint_vectors_and_queries_are_embedded_once(
    ablation: tuple[Evaluation, dict[str, Recorded]],
) -> None:
    evaluation, records = ablation
    assert list(evaluation) == list(ABLATION_CONFIGS)  # seven configurations ran...
    assert records["embed_document_streams"].items == 8  # ...on one embedding of each corpus item
    assert records["embed_documents"].items == len(VIDEOS)  # joint vector: items with audio AND video
    assert all(
        c.audio is not None and c.video is not None and c.text is None
        for c in records["embed_documents"].inputs[0]
    )
    assert records["embed_queries"].items == len(JUDGED)  # the unjudged query is never embedded
    assert all(result.num_queries == len(JUDGED) for result in evaluation.values())
    assert evaluation.skipped == {} and evaluation.failures == []
    assert {"embed_corpus", "embed_joint", "embed_queries", "index", f"search:{RRF}"} <= set(
        evaluation.seconds
    )


def test_stream_filters_return_exactly_the_items_with_the_stream(
    ablation: tuple[Evaluation, dict[str, Recorded]],
) -> None:
    evaluation, _ = ablation
    expected = {
        TEXT: set(TEXT_DOCS),
        VIDEO_ONLY: set(VIDEOS),
        AV_JOINT: set(VIDEOS),
        AUDIO_ONLY: AUDIO_ITEMS,
        AV_SEPARATE: AUDIO_ITEMS,
        RRF: AUDIO_ITEMS,
        DBSF: AUDIO_ITEMS,
    }
    for name, docs in expected.items():
        run = evaluation.runs[name]
        assert set(run) == set(JUDGED)
        assert all(set(hits) == docs for hits in run.values()), name


def test_identical_content_ranks_first_under_its_stream(
    ablation: tuple[Evaluation, dict[str, Recorded]],
) -> None:
    evaluation, _ = ablation
    for qid in TEXT_QUERIES:
        assert evaluation[TEXT].per_query[qid]["MRR@1"] == 1.0
        assert evaluation[VIDEO_ONLY].per_query[qid]["Recall@10"] == 0.0  # text docs have no video
    for qid in VIDEO_QUERIES:
        for name in (VIDEO_ONLY, AV_JOINT, AV_SEPARATE):
            assert evaluation[name].per_query[qid]["NDCG@1"] == 1.0, (name, qid)
        assert evaluation[TEXT].per_query[qid]["Recall@10"] == 0.0
    # every audio item is retrieved, so the audio query's document is within the top 10
    assert evaluation[AUDIO_ONLY].per_query["qa0"]["Recall@10"] == 1.0
    assert evaluation[TEXT]["MRR@1"] == pytest.approx(3 / 7)
    assert evaluation[VIDEO_ONLY]["NDCG@1"] == pytest.approx(3 / 7)


def test_run_scores_are_the_cosines_of_the_embedded_vectors(
    ablation: tuple[Evaluation, dict[str, Recorded]], dataset: EvalDataset
) -> None:
    evaluation, records = ablation
    streams, joint, queries = _vectors(dataset, records)
    for qid, q in queries.items():
        for doc, score in evaluation.runs[VIDEO_ONLY][qid].items():
            assert score == pytest.approx(_cos(q, streams[doc]["video"]), abs=1e-5)
        for doc, score in evaluation.runs[AV_JOINT][qid].items():
            assert score == pytest.approx(_cos(q, joint[doc]), abs=1e-5)
        for doc, score in evaluation.runs[AV_SEPARATE][qid].items():
            cosines = [_cos(q, streams[doc][s]) for s in ("audio", "video") if s in streams[doc]]
            assert score == pytest.approx(np.mean(cosines), abs=1e-5)
    # early fusion is a different vector from either stream: the runs must differ
    assert evaluation.runs[AV_JOINT]["qv0"] != evaluation.runs[VIDEO_ONLY]["qv0"]


def test_results_equal_pytrec_eval_on_the_kept_runs(
    ablation: tuple[Evaluation, dict[str, Recorded]], dataset: EvalDataset
) -> None:
    evaluation, _ = ablation
    for name, result in evaluation.items():
        reference = evaluate(evaluation.runs[name], dataset.qrels, KS, backend="pytrec_eval")
        for metric, value in result.means.items():
            assert value == pytest.approx(reference.means[metric], abs=1e-9), (name, metric)


def test_only_the_needed_streams_are_embedded(embedder: Any, dataset: EvalDataset) -> None:
    with recording(embedder) as records:
        evaluation = run_evaluation(embedder, dataset, configs=[single_configuration(["text"])], ks=KS)
    assert list(evaluation) == [TEXT]
    sent = records["embed_document_streams"].inputs
    assert [c.text for batch in sent for c in batch] == list(TEXTS)  # no video decoded for a text run
    assert records["embed_documents"].items == 0


def test_configurations_missing_from_the_corpus_are_skipped_with_a_reason(
    embedder: Any, tmp_path: Path
) -> None:
    _write_jsonl(tmp_path / "corpus.jsonl", [{"_id": f"t{i}", "text": t} for i, t in enumerate(TEXTS)])
    _write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q", "text": TEXTS[1]}])
    (tmp_path / "qrels.tsv").write_text("q\tt1\t1\n", encoding="utf-8")
    data = load_dataset(tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl", tmp_path / "qrels.tsv")
    evaluation = run_evaluation(embedder, data, ks=(1,), k_retrieve=5)
    assert list(evaluation) == [TEXT] and evaluation[TEXT]["MRR@1"] == 1.0
    assert list(evaluation.skipped) == [c for c in ABLATION_CONFIGS if c != TEXT]
    assert evaluation.skipped[AV_JOINT] == "no corpus item has both audio and video"
    assert "audio" in evaluation.skipped[AUDIO_ONLY] and "video" in evaluation.skipped[RRF]
    with pytest.raises(EvalError, match="no configuration could run"):
        run_evaluation(embedder, data, configs=[AUDIO_ONLY], ks=(1,))


def test_configuration_names_and_argument_checks(embedder: Any, dataset: EvalDataset) -> None:
    assert tuple(ABLATION) == ABLATION_CONFIGS
    assert single_configuration(["video"]) is ABLATION[VIDEO_ONLY]
    assert single_configuration(["video", "audio"], "rrf") is ABLATION[RRF]
    assert single_configuration(["text", "video"], "max").name == "text+video (max)"
    assert single_configuration(None).streams is None
    with pytest.raises(EvalError, match="streams"):
        single_configuration(["smell"])
    with pytest.raises(EvalError, match="k_retrieve"):
        run_evaluation(embedder, dataset, ks=(5, 10), k_retrieve=5)
    with pytest.raises(EvalError, match="unknown configuration"):
        run_evaluation(embedder, dataset, configs=["Smell-only"])


# -- the command -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omni-rag")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _eval(*argv: str | Path) -> tuple[int, str, str]:
    """``omni-rag eval ARGV`` in-process: exit code, stdout, stderr."""
    args = _parser().parse_args(["eval", *map(str, argv)])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_eval(args)
    return code, out.getvalue(), err.getvalue()


def _data_args(root: Path) -> list[str | Path]:
    return [
        "--corpus",
        root / "corpus.jsonl",
        "--queries",
        root / "queries.jsonl",
        "--qrels",
        root / "qrels.tsv",
    ]


@pytest.fixture(scope="module")
def cli_ablation(
    data_dir: Path, native_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str, str, Path]:
    out = tmp_path_factory.mktemp("cli-eval") / "results.json"
    model: list[str | Path] = ["--model", native_checkpoint, "--device", "cpu", "--quiet"]
    code, stdout, stderr = _eval(
        *_data_args(data_dir), "--ablation", "--k", "1,10", "--out", out, "--paper", "FineVideo", *model
    )
    return code, stdout, stderr, out


def test_cli_ablation_prints_the_table_and_writes_json_and_chart(
    cli_ablation: tuple[int, str, str, Path], native_checkpoint: Path
) -> None:
    code, stdout, stderr, out = cli_ablation
    assert code == 0, stderr
    lines = stdout.splitlines()
    metrics = ["NDCG@1", "NDCG@10", "Recall@1", "Recall@10", "MRR@1", "MRR@10", "MAP@1", "MAP@10", "MAP"]
    assert lines[0] == "| " + " | ".join(["Configuration", *metrics, "Queries"]) + " |"
    assert [line.split(" | ")[0].lstrip("| ") for line in lines[2:]] == list(ABLATION_CONFIGS)
    saved = load_results(out)
    assert list(saved.results) == list(ABLATION_CONFIGS)
    assert saved.model["id"] == str(native_checkpoint)
    assert saved.packages["omni-rag"] is not None and saved.config["ks"] == [1, 10]
    assert saved.config["configurations"][RRF] == {"streams": ["audio", "video"], "fusion": "rrf"}
    assert set(saved.results[TEXT].per_query) == set(JUDGED)
    assert all(saved.results[TEXT].per_query[q]["MRR@1"] == 1.0 for q in TEXT_QUERIES)
    text_row = next(line for line in lines if line.startswith(f"| {TEXT} |"))
    assert text_row.split(" | ")[1] == f"{saved.results[TEXT]['NDCG@1']:.4f}"
    chart = out.with_suffix(".png")  # default: next to --out
    assert chart.read_bytes()[:8] == PNG_MAGIC and chart.stat().st_size > 10_000
    assert f"wrote {chart}" in stderr and "search:RRF" in stderr


def test_cli_single_run_and_compare(
    cli_ablation: tuple[int, str, str, Path], data_dir: Path, native_checkpoint: Path
) -> None:
    ablation_json = cli_ablation[3]
    single_json = ablation_json.with_name("video.json")
    model: list[str | Path] = ["--model", native_checkpoint, "--device", "cpu", "--quiet"]
    code, stdout, stderr = _eval(
        *_data_args(data_dir), "--streams", "video", "--k", "1,10", "--out", single_json, *model
    )
    assert code == 0, stderr
    assert stdout.splitlines()[2].startswith(f"| {VIDEO_ONLY} | 0.4286 |")  # 3 of 7 queries are videos
    assert len(stdout.splitlines()) == 3 and not single_json.with_suffix(".png").exists()
    code, stdout, _ = _eval("--compare", ablation_json, single_json)
    assert code == 0
    assert "config `ablation`: True -> False" in stdout
    assert f"only in A: {', '.join(c for c in ABLATION_CONFIGS if c != VIDEO_ONLY)}" in stdout
    assert f"| {VIDEO_ONLY} | NDCG@10 |" in stdout and "| +0.0000 | 0 / 0 |" in stdout


def test_cli_rejects_bad_input_before_loading_the_model(data_dir: Path, tmp_path: Path) -> None:
    no_model: list[str | Path] = [
        "--model",
        tmp_path / "no-such-model",
    ]  # a model load would fail with MODEL_LOAD instead
    with pytest.raises(CliError, match="--qrels") as error:
        _eval("--corpus", data_dir / "corpus.jsonl", "--queries", data_dir / "queries.jsonl", *no_model)
    assert error.value.code == ExitCode.USAGE
    with pytest.raises(CliError, match="--k"):
        _eval(*_data_args(data_dir), "--k", "0,x", *no_model)
    with pytest.raises(CliError, match="--metric"):
        _eval(*_data_args(data_dir), "--metric", "NDCG@3", *no_model)
    with pytest.raises(CliError, match="--k-retrieve"):
        _eval(*_data_args(data_dir), "--k-retrieve", "5", *no_model)
    (tmp_path / "qrels.tsv").write_text("qt0\tnope\t1\n", encoding="utf-8")
    with pytest.raises(CliError, match="document 'nope'") as error:
        _eval(
            "--corpus",
            data_dir / "corpus.jsonl",
            "--queries",
            data_dir / "queries.jsonl",
            "--qrels",
            tmp_path / "qrels.tsv",
            *no_model,
        )
    assert error.value.code == ExitCode.USAGE
    with pytest.raises(CliError, match="cannot read results"):
        _eval("--compare", tmp_path / "qrels.tsv", tmp_path / "qrels.tsv")
    assert parse_ks("10,5,10") == (5, 10)


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two text documents and a video nothing decodes; a text query and a query with that video."""
    root = tmp_path_factory.mktemp("broken")
    make_corrupt(root / "bad.mp4")
    _write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "t0", "text": TEXTS[0]},
            {"_id": "t1", "text": TEXTS[1]},
            {"_id": "bad", "video": "bad.mp4"},
        ],
    )
    _write_jsonl(
        root / "queries.jsonl", [{"_id": "q0", "text": TEXTS[0]}, {"_id": "qbad", "video": "bad.mp4"}]
    )
    (root / "qrels.tsv").write_text("q0\tt0\t1\nqbad\tbad\t1\n", encoding="utf-8")
    return root


def test_unreadable_items_stop_the_run_or_are_left_out_and_counted(embedder: Any, broken_dir: Path) -> None:
    data = load_dataset(broken_dir / "corpus.jsonl", broken_dir / "queries.jsonl", broken_dir / "qrels.tsv")
    with pytest.raises(EmbeddingError, match="document bad: video") as error:
        run_evaluation(embedder, data, configs=[TEXT, VIDEO_ONLY], ks=(1,), k_retrieve=5)
    assert len(error.value.failures) == 1
    evaluation = run_evaluation(
        embedder, data, configs=[TEXT, VIDEO_ONLY], ks=(1,), k_retrieve=5, errors="skip"
    )
    assert [f.split(":")[0] for f in evaluation.failures] == ["document bad", "query qbad"]
    assert evaluation.skipped == {VIDEO_ONLY: "no corpus item has a video stream"}
    # the query that could not be embedded counts as a miss, not as absent
    assert evaluation[TEXT].per_query == {
        "q0": evaluation[TEXT].per_query["q0"],
        "qbad": dict.fromkeys(evaluation[TEXT].means, 0.0),
    }
    assert evaluation[TEXT]["MRR@1"] == 0.5 and evaluation[TEXT].missing_queries == ("qbad",)


def test_cli_skip_errors_exits_1_and_names_the_items(broken_dir: Path, native_checkpoint: Path) -> None:
    args: list[str | Path] = [
        *_data_args(broken_dir),
        "--streams",
        "text",
        "--k",
        "1",
        "--model",
        native_checkpoint,
    ]
    with pytest.raises(CliError, match="query qbad: video") as error:
        _eval(*args, "--device", "cpu", "--quiet")
    assert "--skip-errors" in error.value.message
    code, stdout, stderr = _eval(*args, "--device", "cpu", "--quiet", "--skip-errors")
    assert code == ExitCode.PARTIAL
    assert (
        "not embedded: query qbad" in stderr and "document bad" not in stderr
    )  # a text run never opens the video
    assert stdout.splitlines()[2] == f"| {TEXT} | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 2 |"
