"""The native metrics must equal pytrec_eval's on anything a retrieval run can look like."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval

from omni_rag.errors import OmniError
from omni_rag.eval.errors import EvalError
from omni_rag.eval.metrics import EvalResult, evaluate, metric_keys, trec_order

TOL = 1e-9


def _reference(run: dict, qrels: dict, ks: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """pytrec_eval's numbers under our metric names; MRR@k is recip_rank on the run cut to k."""
    cut = ",".join(map(str, ks))
    measures = {f"ndcg_cut.{cut}", f"recall.{cut}", f"map_cut.{cut}", "map", "recip_rank"}
    raw = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    out: dict[str, dict[str, float]] = {}
    for qid, m in raw.items():
        out[qid] = {"MAP": m["map"]}
        for k in ks:
            out[qid][f"NDCG@{k}"] = m[f"ndcg_cut_{k}"]
            out[qid][f"Recall@{k}"] = m[f"recall_{k}"]
            out[qid][f"MAP@{k}"] = m[f"map_cut_{k}"]
    for k in ks:
        # Cut with pytrec_eval's own order, recovered independently: score as C float, id descending.
        top = {
            q: dict(sorted(docs.items(), key=lambda x: (np.float32(x[1]), x[0]), reverse=True)[:k])
            for q, docs in run.items()
        }
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top)
        for qid in out:
            out[qid][f"MRR@{k}"] = rr[qid]["recip_rank"]
    return out


def _random_case(rng: np.random.Generator) -> tuple[dict, dict]:
    """Runs and qrels full of the awkward cases: ties, unjudged docs, no relevant docs, empty runs."""
    pool = [f"d{i}" for i in range(rng.integers(3, 40))] + ["D", "é", "doc-10", "doc-9"]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    graded = bool(rng.integers(2))
    for q in range(rng.integers(1, 12)):
        qid = f"q{q}"
        judged = rng.choice(pool, size=rng.integers(0, min(12, len(pool))), replace=False)
        rels = rng.integers(-1, 4 if graded else 2, size=len(judged))
        if rng.random() < 0.2:
            rels[:] = 0  # judged but nothing relevant
        if len(judged) or rng.random() < 0.5:
            qrels[qid] = {str(d): int(r) for d, r in zip(judged, rels, strict=True)}
        if rng.random() < 0.15:
            continue  # judged query the run does not answer
        retrieved = rng.choice(pool, size=rng.integers(0, len(pool) + 1), replace=False)
        style = rng.integers(4)
        if style == 0:  # heavy ties
            scores = rng.integers(0, 3, size=len(retrieved)).astype(float)
        elif style == 1:  # differences below float32 resolution are ties for trec_eval
            scores = 0.5 + rng.integers(0, 3, size=len(retrieved)) * 1e-9
        elif style == 2:  # signed zeros and negatives
            scores = rng.choice([0.0, -0.0, -1.5, 2.0], size=len(retrieved))
        else:
            scores = rng.normal(size=len(retrieved))
        run[qid] = {str(d): float(s) for d, s in zip(retrieved, scores, strict=True)}
    run["unjudged"] = {pool[0]: 1.0}
    return run, qrels


@pytest.mark.parametrize("seed", range(12))
def test_random_runs_equal_pytrec_eval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(40):
        run, qrels = _random_case(rng)
        ks = tuple(sorted({int(k) for k in rng.choice([1, 2, 3, 5, 10, 100, 1000], size=3)}))
        expected = _reference(run, qrels, ks)
        if not expected:
            with pytest.raises(EvalError):
                evaluate(run, qrels, ks)
            continue
        result = evaluate(run, qrels, ks)
        assert set(result.per_query) == set(expected)
        for qid, metrics in expected.items():
            assert set(result.per_query[qid]) == set(metrics)
            for key, value in metrics.items():
                assert math.isclose(result.per_query[qid][key], value, rel_tol=0, abs_tol=TOL), (qid, key)
                checked += 1
        for key in metric_keys(ks):
            beir_mean = sum(m[key] for m in expected.values()) / len(expected)  # BEIR's averaging
            assert math.isclose(result.means[key], beir_mean, rel_tol=0, abs_tol=TOL), key
        assert result.missing_queries == tuple(q for q, j in qrels.items() if j and q not in run)
    assert checked > 1000


def test_pytrec_eval_backend_matches_native() -> None:
    rng = np.random.default_rng(99)
    for _ in range(20):
        run, qrels = _random_case(rng)
        if not any(q in run and j for q, j in qrels.items()):
            continue
        native = evaluate(run, qrels, (1, 5, 10))
        reference = evaluate(run, qrels, (1, 5, 10), backend="pytrec_eval")
        assert native.per_query.keys() == reference.per_query.keys()
        for qid, metrics in native.per_query.items():
            for key, value in metrics.items():
                assert math.isclose(value, reference.per_query[qid][key], abs_tol=TOL)


def test_many_relevant_docs_take_the_sorting_path() -> None:
    docs = [f"d{i:03d}" for i in range(60)]
    qrels = {"q": {d: 1 + i % 3 for i, d in enumerate(docs[::2])}}
    run = {"q": {d: float(i % 5) for i, d in enumerate(docs)}}
    expected = _reference(run, qrels, (5, 10, 50))
    result = evaluate(run, qrels, (5, 10, 50))
    for key, value in expected["q"].items():
        assert math.isclose(result.per_query["q"][key], value, abs_tol=TOL), key


def test_ties_break_by_doc_id_descending() -> None:
    # All scores tie: trec_eval ranks c, b, a; only 'a' is relevant -> rank 3.
    result = evaluate({"q": {"a": 1.0, "b": 1.0, "c": 1.0}}, {"q": {"a": 1}}, (1, 3))
    assert result.per_query["q"]["MRR@3"] == pytest.approx(1 / 3)
    assert result.per_query["q"]["MRR@1"] == 0.0
    assert trec_order({"a": 1.0, "b": 1.0, "c": 1.0, "z": 0.5}) == ["c", "b", "a", "z"]
    # 1 + 1e-9 is 1.0 as a C float: still a tie.
    assert trec_order({"a": 1.0 + 1e-9, "b": 1.0}) == ["b", "a"]


def test_graded_ndcg_uses_linear_gain() -> None:
    # rel 3 at rank 2, rel 1 at rank 1: DCG = 1 + 3/log2(3); ideal = 3 + 1/log2(3).
    result = evaluate({"q": {"x": 2.0, "y": 1.0}}, {"q": {"x": 1, "y": 3}}, (2,))
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert result.per_query["q"]["NDCG@2"] == pytest.approx(expected, abs=1e-12)


def test_missing_queries_skip_or_zero() -> None:
    run = {"q1": {"a": 1.0}}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "empty": {}}
    skipped = evaluate(run, qrels, (10,))
    assert skipped.missing_queries == ("q2",)
    assert skipped.num_queries == 1
    assert skipped["NDCG@10"] == 1.0
    zeroed = evaluate(run, qrels, (10,), missing="zero")
    assert zeroed.num_queries == 2
    assert zeroed["NDCG@10"] == 0.5
    assert zeroed.per_query["q2"]["MAP"] == 0.0


def test_metric_keys_and_ks_normalised() -> None:
    result = evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, [10, 5, 10])
    assert result.ks == (5, 10)
    assert result.metric_keys == metric_keys((5, 10))
    assert result.metric_keys[0] == "NDCG@5" and result.metric_keys[-1] == "MAP"
    assert list(result.means) == list(result.metric_keys)


def test_round_trip_dict() -> None:
    result = evaluate({"q": {"a": 0.3, "b": 0.7}, "r": {"c": 1.0}}, {"q": {"a": 1}, "r": {"d": 2}}, (1, 2))
    assert EvalResult.from_dict(result.to_dict()) == result


@pytest.mark.parametrize(
    ("run", "qrels", "ks", "match"),
    [
        ({"q": {"a": float("nan")}}, {"q": {"a": 1}}, (5,), "NaN"),
        ({"q": {"a": "high"}}, {"q": {"a": 1}}, (5,), "numbers"),
        ({"q": {"a": 1.0}}, {"q": {"a": 0.5}}, (5,), "int"),
        ({"q": {"a": 1.0}}, {"q": {"a": 1}}, (0,), "positive"),
        ({"q": {"a": 1.0}}, {"q": {"a": 1}}, (), "empty"),
        ({"x": {"a": 1.0}}, {"q": {"a": 1}}, (5,), "nothing to average"),
    ],
)
def test_bad_inputs_raise_eval_error(run: dict, qrels: dict, ks: tuple, match: str) -> None:
    with pytest.raises(EvalError, match=match) as info:
        evaluate(run, qrels, ks)
    assert isinstance(info.value, OmniError)
    assert isinstance(info.value, ValueError)


def test_unknown_metric_and_options_raise() -> None:
    result = evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}})
    with pytest.raises(EvalError, match="no metric"):
        result["NDCG@3"]
    with pytest.raises(EvalError, match="missing"):
        evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, missing="drop")  # type: ignore[arg-type]
    with pytest.raises(EvalError, match="backend"):
        evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, backend="trec")  # type: ignore[arg-type]
