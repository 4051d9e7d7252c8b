"""Retrieval evaluation, BEIR-style: data loaders, pytrec_eval-identical metrics, ablation reports.

Torch-free on purpose: everything here imports on a laptop without torch, so metrics can be tested and
results compared without a GPU. :func:`run_evaluation` takes an already loaded embedder, embeds the
corpus once and scores every configuration on it; ``omni-rag eval`` is its command line.
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
from omni_rag.eval.runner import (
    ABLATION,
    Configuration,
    EmbeddingError,
    Evaluation,
    run_evaluation,
    single_configuration,
)

__all__ = [
    "ABLATION",
    "ABLATION_CONFIGS",
    "PAPER_NDCG10",
    "Configuration",
    "CorpusItem",
    "DataProblem",
    "EmbeddingError",
    "EvalDataError",
    "EvalDataWarning",
    "EvalDataset",
    "EvalError",
    "EvalItem",
    "EvalResult",
    "Evaluation",
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
    "run_evaluation",
    "single_configuration",
    "trec_order",
]
