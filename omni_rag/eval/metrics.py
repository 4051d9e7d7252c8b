"""Retrieval metrics that equal trec_eval's (as exposed by ``pytrec_eval``) to the last bit that matters.

BEIR-style numbers are only comparable across papers if they are computed the way ``pytrec_eval``
computes them, so this module reproduces its conventions rather than the textbook ones:

* Ranking: scores are compared as **float32** (trec_eval stores ``sim`` as a C ``float``), ties are
  broken by document id **descending** (byte order, i.e. Python ``str`` order).
* NDCG@k (``ndcg_cut_k``): gain = relevance (not ``2**rel - 1``), discount ``log2(rank + 1)``,
  relevance <= 0 has zero gain; the ideal ranking is built from every judgment of the query.
* Recall@k, MRR (``recip_rank``), MAP (``map``, ``map_cut_k``): relevant means relevance >= 1.
* MRR@k is ``recip_rank`` on the run cut to its top k (BEIR's convention), i.e. 0 if the first
  relevant document is below rank k.
* A query with judgments but no relevant document scores 0 everywhere and counts in the mean.

Which queries are averaged: ``pytrec_eval`` returns a query only when it is a key of both the run
and the qrels (with at least one judgment), and BEIR averages over what it returns. That is the
default (``missing="skip"``). Queries the run has no entry for are listed in
:attr:`EvalResult.missing_queries` so they are never lost silently; ``missing="zero"`` counts them
as 0 instead, which is the honest number when a system failed to answer them. Queries of the run
that have no judgments are ignored, as in ``pytrec_eval``.

The native implementation only ranks the relevant documents of each query instead of sorting whole
runs, which is why it is faster than ``pytrec_eval`` on large runs; ``backend="pytrec_eval"`` calls
the reference itself (``pip install pytrec-eval-terrier``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from omni_rag.eval.errors import EvalError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

#: Above this many relevant documents retrieved for one query, one sort beats counting per document.
_SORT_THRESHOLD = 8


def metric_keys(ks: Sequence[int]) -> tuple[str, ...]:
    """Names of every metric :func:`evaluate` reports for cutoffs ``ks``, in display order."""
    cuts = _check_ks(ks)
    keys = [f"{name}@{k}" for name in ("NDCG", "Recall", "MRR", "MAP") for k in cuts]
    return (*keys, "MAP")


@dataclass(frozen=True)
class EvalResult:
    """Scores of one run against one set of qrels.

    Attributes:
        per_query: ``{query_id: {metric: value}}`` for every averaged query.
        means: ``{metric: mean over per_query}``.
        ks: The cutoffs, ascending.
        missing_queries: Judged queries the run had no entry for (skipped or zeroed, see ``missing``).
    """

    per_query: dict[str, dict[str, float]]
    means: dict[str, float]
    ks: tuple[int, ...]
    missing_queries: tuple[str, ...] = field(default=())

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return metric_keys(self.ks)

    @property
    def num_queries(self) -> int:
        return len(self.per_query)

    def __getitem__(self, metric: str) -> float:
        try:
            return self.means[metric]
        except KeyError:
            raise EvalError(f"no metric '{metric}'; known: {', '.join(self.means)}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` inverts it exactly (floats round-trip through JSON)."""
        return {
            "ks": list(self.ks),
            "num_queries": self.num_queries,
            "missing_queries": list(self.missing_queries),
            "means": dict(self.means),
            "per_query": {qid: dict(scores) for qid, scores in self.per_query.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        try:
            return cls(
                per_query={
                    str(q): {str(m): float(v) for m, v in s.items()} for q, s in data["per_query"].items()
                },
                means={str(m): float(v) for m, v in data["means"].items()},
                ks=tuple(int(k) for k in data["ks"]),
                missing_queries=tuple(str(q) for q in data.get("missing_queries", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EvalError(f"not an EvalResult dict: {exc!r}") from exc


def evaluate(
    run: Run,
    qrels: Qrels,
    ks: Sequence[int] = (5, 10),
    *,
    missing: Literal["skip", "zero"] = "skip",
    backend: Literal["native", "pytrec_eval"] = "native",
) -> EvalResult:
    """Score ``run`` (``{query_id: {doc_id: score}}``) against ``qrels`` (``{query_id: {doc_id: rel}}``).

    Args:
        run: Retrieval scores; higher is better. Documents absent from qrels are non-relevant.
        qrels: Graded relevance judgments (ints); <= 0 is non-relevant.
        ks: Cutoffs for NDCG@k, Recall@k, MRR@k and MAP@k.
        missing: ``"skip"`` (pytrec_eval/BEIR) or ``"zero"`` for judged queries absent from the run.
        backend: ``"native"`` or ``"pytrec_eval"`` (the reference; same numbers, needs the package).

    Raises:
        EvalError: Non-positive/non-int cutoffs, NaN or non-numeric scores, non-int relevance, or no
            query to average over.
    """
    cuts = _check_ks(ks)
    if missing not in ("skip", "zero"):
        raise EvalError(f"missing must be 'skip' or 'zero', not {missing!r}")
    judged = {qid: judgments for qid, judgments in qrels.items() if len(judgments) > 0}
    for qid, judgments in judged.items():
        _check_qrels(qid, judgments)
    if backend == "native":
        per_query = {qid: _score_query(qid, run[qid], judged[qid], cuts) for qid in run if qid in judged}
    elif backend == "pytrec_eval":
        per_query = _pytrec_eval_scores(run, judged, cuts)
    else:
        raise EvalError(f"backend must be 'native' or 'pytrec_eval', not {backend!r}")
    absent = tuple(qid for qid in judged if qid not in run)
    if missing == "zero":
        zeros = dict.fromkeys(metric_keys(cuts), 0.0)
        per_query.update({qid: dict(zeros) for qid in absent})
    if not per_query:
        raise EvalError("no query is both in the run and judged in the qrels: nothing to average")
    means = {key: sum(s[key] for s in per_query.values()) / len(per_query) for key in metric_keys(cuts)}
    return EvalResult(per_query=per_query, means=means, ks=cuts, missing_queries=absent)


def trec_order(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval's ranking order: float32 score descending, then id descending.

    Use it to cut a run to its top k exactly as the metrics rank it (e.g. before storing a run).
    """
    values = _as_float32("<run>", scores).tolist()
    return [doc for _, doc in sorted(zip(values, scores, strict=True), reverse=True)]


def _check_ks(ks: Sequence[int] | Iterable[int]) -> tuple[int, ...]:
    cuts = tuple(ks)
    if not cuts:
        raise EvalError("ks is empty: give at least one cutoff, e.g. (5, 10)")
    for k in cuts:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise EvalError(f"cutoff {k!r} is not a positive int")
    return tuple(sorted({int(k) for k in cuts}))


def _check_qrels(qid: str, judgments: Mapping[str, int]) -> None:
    for doc, rel in judgments.items():
        if isinstance(rel, bool) or not isinstance(rel, (int, np.integer)):
            raise EvalError(f"qrels[{qid!r}][{doc!r}] = {rel!r}: relevance must be an int")


def _as_float32(qid: str, scores: Mapping[str, float]) -> np.ndarray:
    """Scores as trec_eval sees them (C float), held in float64; rejects what it cannot rank."""
    try:
        values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    except (TypeError, ValueError) as exc:
        raise EvalError(f"run[{qid!r}]: scores must be numbers ({exc})") from exc
    if np.isnan(values).any():
        doc = next(d for d, v in scores.items() if math.isnan(v))
        raise EvalError(f"run[{qid!r}][{doc!r}] is NaN: it cannot be ranked")
    with np.errstate(over="ignore"):
        return values.astype(np.float32).astype(np.float64)


def _score_query(
    qid: str, scores: Mapping[str, float], judgments: Mapping[str, int], ks: tuple[int, ...]
) -> dict[str, float]:
    values = _as_float32(qid, scores)
    num_rel = sum(1 for rel in judgments.values() if rel > 0)
    ranked = _relevant_ranks(scores, values, judgments)  # [(rank, rel)] ascending by rank
    out: dict[str, float] = {}
    if num_rel == 0:
        return dict.fromkeys(metric_keys(ks), 0.0)
    ideal = sorted((rel for rel in judgments.values() if rel > 0), reverse=True)
    for k in ks:
        dcg = 0.0
        for rank, rel in ranked:
            if rank > k:
                break
            dcg += rel / math.log2(rank + 1)
        idcg = 0.0
        for i, rel in enumerate(ideal[:k]):
            idcg += rel / math.log2(i + 2)
        out[f"NDCG@{k}"] = dcg / idcg
    for k in ks:
        out[f"Recall@{k}"] = sum(1 for rank, _ in ranked if rank <= k) / num_rel
    first = ranked[0][0] if ranked else None
    for k in ks:
        out[f"MRR@{k}"] = 1.0 / first if first is not None and first <= k else 0.0
    precisions = [(i + 1) / rank for i, (rank, _) in enumerate(ranked)]
    for k in ks:
        total = 0.0
        for (rank, _), precision in zip(ranked, precisions, strict=True):
            if rank > k:
                break
            total += precision
        out[f"MAP@{k}"] = total / num_rel
    total = 0.0
    for precision in precisions:
        total += precision
    out["MAP"] = total / num_rel
    return out


def _relevant_ranks(
    scores: Mapping[str, float], values: np.ndarray, judgments: Mapping[str, int]
) -> list[tuple[int, int]]:
    """1-based trec_eval ranks of the retrieved relevant documents, with their relevance, by rank.

    ``values`` are ``scores`` as float32, in the same order. Only relevant documents matter to
    every metric here, so they are ranked by counting who beats them instead of sorting the whole
    run, unless there are enough of them that one sort is cheaper.
    """
    relevant = [(doc, rel) for doc, rel in judgments.items() if rel > 0 and doc in scores]
    if not relevant:
        return []
    if len(relevant) > _SORT_THRESHOLD:
        order = sorted(zip(values.tolist(), scores, strict=True), reverse=True)
        rels = dict(relevant)
        return [(i + 1, rels[doc]) for i, (_, doc) in enumerate(order) if doc in rels]
    ranks = []
    ids: list[str] | None = None
    for doc, rel in relevant:
        with np.errstate(over="ignore"):
            score = float(np.float32(scores[doc]))
        rank = 1 + int(np.count_nonzero(values > score))
        ties = values == score
        if np.count_nonzero(ties) > 1:
            ids = ids if ids is not None else list(scores)
            rank += sum(1 for i in np.flatnonzero(ties).tolist() if ids[i] > doc)
        ranks.append((rank, rel))
    ranks.sort()
    return ranks


def _pytrec_eval_scores(run: Run, judged: Qrels, ks: tuple[int, ...]) -> dict[str, dict[str, float]]:
    try:
        import pytrec_eval
    except ImportError as exc:
        raise EvalError("backend='pytrec_eval' needs `pip install pytrec-eval-terrier`") from exc
    for qid, scores in run.items():
        if qid in judged:
            _as_float32(qid, scores)  # same input errors as the native backend
    cut = ",".join(map(str, ks))
    qrels = {q: {d: int(r) for d, r in j.items()} for q, j in judged.items()}
    trec_run = {q: {d: float(s) for d, s in scores.items()} for q, scores in run.items()}
    measures = {f"ndcg_cut.{cut}", f"recall.{cut}", f"map_cut.{cut}", "map", "recip_rank"}
    raw = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(trec_run)
    per_query: dict[str, dict[str, float]] = {qid: {} for qid in run if qid in raw}
    for qid, scores in per_query.items():
        for name, prefix in (("NDCG", "ndcg_cut"), ("Recall", "recall"), ("MRR", ""), ("MAP", "map_cut")):
            for k in ks:
                scores[f"{name}@{k}"] = float(raw[qid][f"{prefix}_{k}"]) if prefix else 0.0
        scores["MAP"] = float(raw[qid]["map"])
    for k in ks:
        top = {q: {d: trec_run[q][d] for d in trec_order(trec_run[q])[:k]} for q in per_query}
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top)
        for qid, scores in per_query.items():
            scores[f"MRR@{k}"] = float(rr[qid]["recip_rank"])
    return per_query
