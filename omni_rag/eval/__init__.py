"""Retrieval evaluation, BEIR-style: data loaders, pytrec_eval-identical metrics, ablation reports.

Model-free on purpose: everything here runs on a laptop without torch, so metrics can be tested and
results compared without a GPU. The embedding side lives in the CLI that produces the runs.
"""

from omni_rag.eval.data import (
    CorpusItem,
    EvalDataset,
    EvalItem,
    QueryItem,
    load_corpus,
    load_dataset,
    load_qrels,
    load_queries,
)
from omni_rag.eval.errors import DataProblem, EvalDataError, EvalDataWarning, EvalError
from omni_rag.eval.metrics import EvalResult, evaluate, metric_keys, trec_order
from omni_rag.eval.report import (
    ABLATION_CONFIGS,
    PAPER_NDCG10,
    ResultsFile,
    ablation_chart,
    ablation_table,
    compare,
    load_results,
    results_json,
)

__all__ = [
    "ABLATION_CONFIGS",
    "PAPER_NDCG10",
    "CorpusItem",
    "DataProblem",
    "EvalDataError",
    "EvalDataWarning",
    "EvalDataset",
    "EvalError",
    "EvalItem",
    "EvalResult",
    "QueryItem",
    "ResultsFile",
    "ablation_chart",
    "ablation_table",
    "compare",
    "evaluate",
    "load_corpus",
    "load_dataset",
    "load_qrels",
    "load_queries",
    "load_results",
    "metric_keys",
    "results_json",
    "trec_order",
]
