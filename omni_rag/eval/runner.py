"""Run an evaluation: embed a corpus once, score every ablation configuration on the same vectors.

Embedding is the expensive part (hours for a 10k-video corpus on a GPU), searching is cheap, so
everything a configuration needs is embedded up front, once, and each configuration is only a
different search over the same vectors:

* per-stream vectors (``embed_document_streams``: text, image, audio and video of an item embedded
  separately) go into one in-memory :class:`~omni_rag.store.OmniStore`; ``Text``, ``Audio-only``,
  ``Video-only``, late-fusion ``mean``, ``RRF`` and ``DBSF`` are searches of it with other
  ``streams`` / ``fusion``, i.e. exactly the product's retrieval path;
* the early-fusion vector (``embed_documents`` of the item's audio and video in one sequence, the
  paper's "Audio+Video Fusion") exists only for items that have both; it is kept in a second
  collection on the same Qdrant client, under its ``video`` stream (the store has fixed stream
  names), so it is searched by the same code instead of a parallel numpy implementation;
* queries (judged ones only, as in BEIR) are embedded once and reused by every configuration.

A run keeps the top ``k_retrieve`` documents per query (``{query_id: {doc_id: score}}``) and is
scored with :func:`~omni_rag.eval.metrics.evaluate`. Judged queries that could not be embedded
(only possible with ``errors="skip"``) count as 0, since a system that cannot read a question
failed it.

Torch-free at import time like the rest of :mod:`omni_rag.eval`: the embedder is passed in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from omni_rag.content import Content
from omni_rag.errors import ItemFailure
from omni_rag.eval.data import CorpusItem, EvalDataset, QueryItem
from omni_rag.eval.errors import EvalError
from omni_rag.eval.metrics import EvalResult, evaluate
from omni_rag.eval.report import (
    ABLATION_CONFIGS,
    AUDIO_ONLY,
    AV_JOINT,
    AV_SEPARATE,
    DBSF,
    RRF,
    TEXT,
    VIDEO_ONLY,
)
from omni_rag.store import STREAMS, FusionMode, OmniStore, Stream

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder

#: A run: ``{query_id: {doc_id: score}}``.
Run = dict[str, dict[str, float]]

#: Stream of the joint collection that holds the early-fusion vectors.
JOINT_STREAM: Stream = "video"

#: Corpus items per embedding call: bounds memory and drives the progress bar; each item is still
#: embedded exactly once.
EMBED_CHUNK = 64


@dataclass(frozen=True)
class Configuration:
    """One row of an evaluation: which vectors a query is scored against and how scores combine.

    Attributes:
        name: Row label; the paper's column names for the ablation (``report.ABLATION_CONFIGS``).
        streams: Streams scored; ``None`` means every stream the corpus has.
        fusion: How per-stream scores combine (see :meth:`OmniStore.search`).
        early_fusion: Score the joint audio+video vector instead of the per-stream ones.
    """

    name: str
    streams: tuple[Stream, ...] | None
    fusion: FusionMode = "mean"
    early_fusion: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form for results files, so a reader knows what each row measured."""
        return {
            "streams": None if self.streams is None else list(self.streams),
            "fusion": "early (one joint audio+video vector)" if self.early_fusion else self.fusion,
        }


#: What each ablation row searches. Names come from ``report.ABLATION_CONFIGS`` (one source of truth).
ABLATION: dict[str, Configuration] = {
    TEXT: Configuration(TEXT, ("text",)),
    AUDIO_ONLY: Configuration(AUDIO_ONLY, ("audio",)),
    VIDEO_ONLY: Configuration(VIDEO_ONLY, ("video",)),
    AV_JOINT: Configuration(AV_JOINT, ("audio", "video"), early_fusion=True),
    AV_SEPARATE: Configuration(AV_SEPARATE, ("audio", "video"), "mean"),
    RRF: Configuration(RRF, ("audio", "video"), "rrf"),
    DBSF: Configuration(DBSF, ("audio", "video"), "dbsf"),
}
assert tuple(ABLATION) == ABLATION_CONFIGS, "runner.ABLATION and report.ABLATION_CONFIGS disagree"


def single_configuration(streams: Sequence[str] | None = None, fusion: FusionMode = "mean") -> Configuration:
    """The configuration of a non-ablation run.

    When it searches exactly like an ablation row (e.g. ``--streams audio,video --fusion rrf``) it
    takes that row's name, so :func:`~omni_rag.eval.report.compare` lines it up with an ablation file.

    Raises:
        EvalError: Unknown stream name or fusion mode.
    """
    from omni_rag.store import FUSION_MODES

    if fusion not in FUSION_MODES:
        raise EvalError(f"fusion must be one of {', '.join(FUSION_MODES)}, not {fusion!r}")
    if streams is None:
        return Configuration(f"all streams ({fusion})", None, fusion)
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams:
        raise EvalError(f"streams must be a non-empty subset of {', '.join(STREAMS)}, not {list(streams)}")
    ordered = tuple(s for s in STREAMS if s in streams)
    for config in ABLATION.values():
        if not config.early_fusion and config.streams == ordered and config.fusion == fusion:
            return config
    return Configuration(f"{'+'.join(ordered)} ({fusion})", ordered, fusion)


@dataclass(frozen=True)
class Evaluation(Mapping[str, EvalResult]):
    """Results of :func:`run_evaluation`: a mapping ``{configuration: EvalResult}`` plus what made them.

    Being a mapping, it goes straight into ``ablation_table``, ``ablation_chart`` and ``results_json``.

    Attributes:
        results: Scores per configuration that ran, in the order requested.
        runs: The top-``k_retrieve`` run of each configuration (``{qid: {doc_id: score}}``).
        configurations: What each configuration searched.
        skipped: Configurations not run, with why (e.g. no corpus item has a video stream).
        failures: Corpus items and queries that could not be embedded (``errors="skip"``).
        seconds: Wall time per phase: ``embed_corpus``, ``embed_joint``, ``embed_queries``, ``index``,
            and ``search:<configuration>``.
        model_id: The embedder's model id.
        model_revision: The embedder's revision.
    """

    results: dict[str, EvalResult]
    runs: dict[str, Run]
    configurations: dict[str, Configuration]
    skipped: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    model_id: str | None = None
    model_revision: str | None = None

    def __getitem__(self, name: str) -> EvalResult:
        return self.results[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def config_json(self) -> dict[str, Any]:
        """The part of a results file's ``config`` this run knows: configurations, skips, failures."""
        return {
            "configurations": {name: self.configurations[name].to_dict() for name in self.results},
            "skipped": dict(self.skipped),
            "embedding_failures": list(self.failures),
        }


def run_evaluation(
    embedder: OmniEmbedder,
    dataset: EvalDataset,
    *,
    configs: Sequence[str | Configuration] = ABLATION_CONFIGS,
    ks: Sequence[int] = (5, 10),
    k_retrieve: int = 100,
    store: OmniStore | None = None,
    errors: Literal["raise", "skip"] = "raise",
    batch_size: int | None = None,
    progress: bool = False,
) -> Evaluation:
    """Embed ``dataset`` once and score every configuration in ``configs`` on it.

    Only the streams some configuration needs are embedded (``--streams text`` never decodes a
    video), and the joint vector only when an early-fusion configuration is asked for.

    Args:
        embedder: The model.
        dataset: Corpus, queries and qrels; only judged queries are embedded.
        configs: Ablation names (``ABLATION_CONFIGS``) and/or :class:`Configuration` objects.
        ks: Metric cutoffs.
        k_retrieve: Documents kept per query; must be at least ``max(ks)``.
        store: Where the per-stream vectors go (default: a fresh in-memory one). It should be
            empty; the joint vectors go into ``<collection>__joint`` on the same client.
        errors: ``"raise"`` stops at the first batch with an item that cannot be embedded;
            ``"skip"`` leaves such items out (listed in :attr:`Evaluation.failures`; a failed query
            scores 0).
        batch_size: Items per forward pass (default: the embedder's).
        progress: Show progress bars on stderr (embedding a real corpus takes hours).

    Raises:
        EmbeddingError: An item could not be embedded and ``errors="raise"`` (ids and reasons).
        EvalError: Unknown configuration name, bad ``k_retrieve``, or no configuration could run.
    """
    chosen = _resolve_configs(configs)
    cuts = tuple(sorted(set(ks)))
    if not cuts or k_retrieve < cuts[-1]:
        raise EvalError(f"k_retrieve ({k_retrieve}) must be >= the largest cutoff ({max(ks, default=0)})")
    seconds: dict[str, float] = {}
    failures: list[str] = []
    if not dataset.judged_queries:
        raise EvalError("no judged query: qrels name none of the queries")
    embedded = _embed_all(embedder, dataset, chosen, errors, batch_size, progress, failures, seconds)
    owned = store is None
    streams_store = store if store is not None else OmniStore("omni-rag-eval", dim=embedder.dim)
    joint_store = streams_store.sibling(f"{streams_store.collection}__joint", dim=embedder.dim)
    try:
        start = time.perf_counter()
        embedded.index(streams_store, joint_store)
        seconds["index"] = time.perf_counter() - start
        results, runs, skipped = _score_all(
            chosen, embedded, streams_store, joint_store, dataset, cuts, k_retrieve, seconds
        )
    finally:
        joint_store.close()
        if owned:
            streams_store.close()
    if not results:
        raise EvalError("no configuration could run: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    return Evaluation(
        results=results,
        runs=runs,
        configurations={c.name: c for c in chosen},
        skipped=skipped,
        failures=failures,
        seconds=seconds,
        model_id=embedder.model_id,
        model_revision=embedder.revision,
    )


@dataclass
class _Embedded:
    """Everything embedded once for a whole evaluation."""

    streams_of: dict[str, dict[str, np.ndarray]]
    joint: dict[str, np.ndarray]
    queries: dict[str, np.ndarray]

    @property
    def present(self) -> set[str]:
        return {s for vectors in self.streams_of.values() for s in vectors}

    def index(self, streams_store: OmniStore, joint_store: OmniStore) -> None:
        ids = [doc_id for doc_id, vectors in self.streams_of.items() if vectors]
        streams_store.upsert(ids, [self.streams_of[i] for i in ids])
        if self.joint:
            joint_store.upsert(list(self.joint), [{JOINT_STREAM: v} for v in self.joint.values()])


def _embed_all(
    embedder: OmniEmbedder,
    dataset: EvalDataset,
    chosen: Sequence[Configuration],
    errors: Literal["raise", "skip"],
    batch_size: int | None,
    progress: bool,
    failures: list[str],
    seconds: dict[str, float],
) -> _Embedded:
    """Corpus streams (only those a configuration scores), the joint vectors if asked, the queries."""
    wanted: set[str] = set()
    for config in chosen:
        if not config.early_fusion:
            wanted |= set(config.streams or STREAMS)
    start = time.perf_counter()
    streams_of = _embed_streams(embedder, dataset.corpus, wanted, errors, batch_size, progress, failures)
    seconds["embed_corpus"] = time.perf_counter() - start
    joint: dict[str, np.ndarray] = {}
    if any(c.early_fusion for c in chosen):
        start = time.perf_counter()
        joint = _embed_joint(embedder, dataset.corpus, errors, batch_size, progress, failures)
        seconds["embed_joint"] = time.perf_counter() - start
    start = time.perf_counter()
    queries = _embed_queries(embedder, dataset.judged_queries, errors, batch_size, failures)
    seconds["embed_queries"] = time.perf_counter() - start
    return _Embedded(streams_of, joint, queries)


def _score_all(
    chosen: Sequence[Configuration],
    embedded: _Embedded,
    streams_store: OmniStore,
    joint_store: OmniStore,
    dataset: EvalDataset,
    cuts: tuple[int, ...],
    k_retrieve: int,
    seconds: dict[str, float],
) -> tuple[dict[str, EvalResult], dict[str, Run], dict[str, str]]:
    """Search and score each configuration; those the data cannot support are skipped, with why."""
    results: dict[str, EvalResult] = {}
    runs: dict[str, Run] = {}
    skipped: dict[str, str] = {}
    present = embedded.present
    for config in chosen:
        why = _why_skip(config, present, bool(embedded.joint))
        if why is not None:
            skipped[config.name] = why
            continue
        start = time.perf_counter()
        if config.early_fusion:
            run = _search(joint_store, embedded.queries, (JOINT_STREAM,), "mean", k_retrieve)
        else:
            searched = config.streams or tuple(s for s in STREAMS if s in present)
            run = _search(streams_store, embedded.queries, searched, config.fusion, k_retrieve)
        seconds[f"search:{config.name}"] = time.perf_counter() - start
        runs[config.name] = run
        results[config.name] = evaluate(run, dataset.qrels, cuts, missing="zero")
    return results, runs, skipped


def _resolve_configs(configs: Sequence[str | Configuration]) -> list[Configuration]:
    if isinstance(configs, str):
        configs = [configs]
    chosen: list[Configuration] = []
    for config in configs:
        if isinstance(config, str):
            if config not in ABLATION:
                raise EvalError(f"unknown configuration {config!r}; known: {', '.join(ABLATION)}")
            config = ABLATION[config]
        if any(c.name == config.name for c in chosen):
            raise EvalError(f"configuration {config.name!r} given twice")
        chosen.append(config)
    if not chosen:
        raise EvalError("no configuration to run")
    return chosen


def _why_skip(config: Configuration, present: set[str], has_joint: bool) -> str | None:
    """Why a configuration cannot run on this corpus, or ``None``.

    A configuration with a stream no item has would silently become another row (audio+video with
    no video is Audio-only), so it is skipped rather than reported twice under two names.
    """
    if config.early_fusion:
        return None if has_joint else "no corpus item has both audio and video"
    if config.streams is None:
        return None if present else "no corpus item was embedded"
    absent = [s for s in config.streams if s not in present]
    if absent:
        return f"no corpus item has a {' or '.join(absent)} stream"
    return None


def _document_content(item: CorpusItem, wanted: set[str]) -> Content | None:
    """The part of an item whose streams are wanted (see ``split_streams``: text carries its image)."""
    has_text = item.full_text is not None
    text = item.full_text if "text" in wanted else None
    image = item.image if ("text" in wanted if has_text else "image" in wanted) else None
    content = Content(
        text=text,
        image=image,
        audio=item.audio if "audio" in wanted else None,
        video=item.video if "video" in wanted else None,
    )
    return content if content.modalities else None


def _chunks(n: int, desc: str, progress: bool) -> Iterator[range]:
    """``range`` chunks of ``EMBED_CHUNK`` items, with an optional progress bar."""
    bar = None
    if progress and n:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="item", desc=desc, file=sys.stderr, leave=False)
    try:
        for offset in range(0, n, EMBED_CHUNK):
            chunk = range(offset, min(offset + EMBED_CHUNK, n))
            yield chunk
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


class EmbeddingError(EvalError):
    """Items could not be embedded and ``errors="raise"``; names every one by its dataset id.

    Attributes:
        failures: ``"document <id>: <field>: <reason>"`` / ``"query <id>: ..."`` per item.
    """

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        super().__init__("could not embed:\n" + "\n".join(f"  {f}" for f in self.failures))


def _record(
    failures: list[str], errors: Literal["raise", "skip"], found: Sequence[ItemFailure], labels: Sequence[str]
) -> None:
    """Note failed items by dataset id (the embedder only knows batch positions); stop if asked to."""
    new = [f"{labels[f.index]}: {f.field}: {f.reason}" for f in found]
    if new and errors == "raise":
        raise EmbeddingError(new)
    failures.extend(new)


def _embed_streams(
    embedder: OmniEmbedder,
    corpus: Sequence[CorpusItem],
    wanted: set[str],
    errors: Literal["raise", "skip"],
    batch_size: int | None,
    progress: bool,
    failures: list[str],
) -> dict[str, dict[str, np.ndarray]]:
    """Per-stream vectors of every corpus item that has a wanted stream, keyed by document id."""
    pending = [(item.id, c) for item in corpus if (c := _document_content(item, wanted)) is not None]
    out: dict[str, dict[str, np.ndarray]] = {}
    for chunk in _chunks(len(pending), "embedding corpus", progress):
        ids = [pending[i][0] for i in chunk]
        result = embedder.embed_document_streams(
            [pending[i][1] for i in chunk], batch_size=batch_size, errors="skip"
        )
        _record(failures, errors, result.failures, [f"document {i}" for i in ids])
        for doc_id, entry in zip(ids, result.embeddings, strict=True):
            if entry is not None:
                out[doc_id] = {s: v for s, v in entry.items() if s in wanted}
    return out


def _embed_joint(
    embedder: OmniEmbedder,
    corpus: Sequence[CorpusItem],
    errors: Literal["raise", "skip"],
    batch_size: int | None,
    progress: bool,
    failures: list[str],
) -> dict[str, np.ndarray]:
    """Early-fusion vectors: the item's audio and video in one sequence, for items that have both."""
    pending = [item for item in corpus if item.audio is not None and item.video is not None]
    out: dict[str, np.ndarray] = {}
    for chunk in _chunks(len(pending), "embedding audio+video", progress):
        items = [pending[i] for i in chunk]
        contents = [Content(audio=item.audio, video=item.video) for item in items]
        result = embedder.embed_documents(contents, batch_size=batch_size, errors="skip")
        _record(failures, errors, result.failures, [f"document {i.id} (audio+video)" for i in items])
        out.update((item.id, v) for item, v in zip(items, result.embeddings, strict=True) if v is not None)
    return out


def _embed_queries(
    embedder: OmniEmbedder,
    queries: Sequence[QueryItem],
    errors: Literal["raise", "skip"],
    batch_size: int | None,
    failures: list[str],
) -> dict[str, np.ndarray]:
    """One vector per query (all its modalities in one sequence), keyed by query id."""
    contents = [Content(text=q.text, image=q.image, audio=q.audio, video=q.video) for q in queries]
    result = embedder.embed_queries(contents, batch_size=batch_size, errors="skip")
    _record(failures, errors, result.failures, [f"query {q.id}" for q in queries])
    return {q.id: v for q, v in zip(queries, result.embeddings, strict=True) if v is not None}


def _search(
    store: OmniStore,
    query_vectors: Mapping[str, np.ndarray],
    streams: Sequence[Stream],
    fusion: FusionMode,
    k_retrieve: int,
) -> Run:
    """The top ``k_retrieve`` of every query; a query with no hit still gets an (empty) entry."""
    return {
        qid: {
            hit.id: hit.score
            for hit in store.search(vector, streams=streams, fusion=fusion, limit=k_retrieve)
        }
        for qid, vector in query_vectors.items()
    }
