"""Ablation table, chart, results JSON and comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omni_rag.eval.errors import EvalError
from omni_rag.eval.metrics import EvalResult, evaluate
from omni_rag.eval.report import (
    ABLATION_CONFIGS,
    AUDIO_ONLY,
    DBSF,
    PAPER_NDCG10,
    TEXT,
    VIDEO_ONLY,
    ablation_chart,
    ablation_table,
    compare,
    load_results,
    results_json,
)

QRELS = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}, "q3": {"d": 1}}


def _results() -> dict[str, EvalResult]:
    runs = {
        DBSF: {"q1": {"a": 0.9, "x": 0.1}, "q2": {"c": 0.8, "b": 0.7}, "q3": {"x": 1.0, "d": 0.5}},
        TEXT: {"q1": {"a": 0.9}, "q2": {"b": 0.8, "c": 0.7}, "q3": {"d": 1.0}},
        "custom": {"q1": {"x": 0.9}, "q2": {"b": 0.8}},
        VIDEO_ONLY: {"q1": {"x": 0.9, "a": 0.2}, "q2": {"z": 0.8}, "q3": {"d": 0.1}},
    }
    return {name: evaluate(run, QRELS, (1, 10)) for name, run in runs.items()}


def test_table_rows_in_paper_order_and_values() -> None:
    results = _results()
    table = ablation_table(results, ["NDCG@10", "MRR@1"])
    lines = table.strip().splitlines()
    assert lines[0] == "| Configuration | NDCG@10 | MRR@1 | Queries |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == [TEXT, VIDEO_ONLY, DBSF, "custom"]
    assert lines[2] == "| Text | 1.0000 | 1.0000 | 3 |"
    assert lines[-1].endswith("| 2 |")  # 'custom' answered only two judged queries
    assert f"{results[DBSF]['NDCG@10']:.4f}" in lines[4]
    with pytest.raises(EvalError, match="no metric"):
        ablation_table(results, ["NDCG@3"])
    assert ablation_table(results).count("|") > table.count("|")  # default: every metric


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = ablation_chart(
        _results(), "NDCG@10", tmp_path / "out" / "chart.png", reference=PAPER_NDCG10["FineVideo"]
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000
    with pytest.raises(EvalError):
        ablation_chart({}, "NDCG@10", tmp_path / "empty.png")


def test_results_json_round_trips(tmp_path: Path) -> None:
    results = _results()
    path = results_json(
        tmp_path / "r.json",
        results,
        config={"k": [1, 10], "fusion": "rrf"},
        model_id="m",
        model_revision="abc",
    )
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert list(raw["results"]) == [TEXT, VIDEO_ONLY, DBSF, "custom"]
    assert raw["packages"]["omni-rag"] is not None and "torch" in raw["packages"]
    loaded = load_results(path)
    assert loaded.results == results
    assert loaded.model == {"id": "m", "revision": "abc"}
    assert loaded.config == {"k": [1, 10], "fusion": "rrf"}
    with pytest.raises(EvalError, match="JSON"):
        results_json(tmp_path / "bad.json", results, config={"x": object()})
    (tmp_path / "other.json").write_text("{}", encoding="utf-8")
    with pytest.raises(EvalError, match="not an omni-rag results file"):
        load_results(tmp_path / "other.json")


def test_compare_reports_deltas_and_differences(tmp_path: Path) -> None:
    a = results_json(
        tmp_path / "a.json", _results(), config={"fusion": "rrf"}, model_id="m", model_revision="r1"
    )
    improved = {
        TEXT: evaluate({"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"x": 1.0, "d": 0.0}}, QRELS, (1, 10))
    }
    improved[AUDIO_ONLY] = improved[TEXT]
    b = results_json(
        tmp_path / "b.json", improved, config={"fusion": "dbsf"}, model_id="m", model_revision="r2"
    )
    diff = compare(a, b)
    assert "model `revision`: 'r1' -> 'r2'" in diff
    assert "config `fusion`: 'rrf' -> 'dbsf'" in diff
    assert "only in A: " in diff and "only in B: Audio-only" in diff
    row = next(line for line in diff.splitlines() if line.startswith("| Text | MRR@1 |"))
    old, new = _results()[TEXT]["MRR@1"], improved[TEXT]["MRR@1"]
    assert row == f"| Text | MRR@1 | {old:.4f} | {new:.4f} | {new - old:+.4f} | 0 / 1 |"


def test_ablation_configs_match_paper_columns() -> None:
    assert ABLATION_CONFIGS[:5] == tuple(PAPER_NDCG10["LPM"])
    assert PAPER_NDCG10["FineVideo"][AUDIO_ONLY] == 0.5407
