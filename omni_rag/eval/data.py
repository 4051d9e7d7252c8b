"""BEIR-style evaluation data (corpus/queries JSONL, qrels TSV) extended with media paths.

Loaders check everything up front and report every problem as ``file:line: reason`` in a single
:class:`EvalDataError`, because a broken benchmark found one line at a time, hours into embedding,
costs more than the whole check.

Policy on cross-references (:func:`load_dataset`): a qrels line naming a query or document that is
not in ``queries.jsonl`` / ``corpus.jsonl`` is an **error** by default. An unknown document can
never be retrieved, so it silently lowers Recall/NDCG; an unknown query can never be run, so BEIR's
averaging silently drops it. With ``unknown_ids="warn"`` both become an :class:`EvalDataWarning`:
unknown queries are dropped (they cannot be evaluated) while unknown documents are kept, so the
scores stay a lower bound instead of being inflated.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omni_rag.eval.errors import DataProblem, EvalDataError, EvalDataWarning, EvalError
from omni_rag.modalities import MEDIA_FIELDS

_TEXT_FIELDS = ("text", "title")
_ID_FIELDS = ("_id", "id")


@dataclass(frozen=True)
class EvalItem:
    """One corpus document or query: any mix of text and media.

    Media values are absolute paths (resolved against the JSONL's folder) or URLs, unchanged.
    """

    id: str
    text: str | None = None
    image: str | None = None
    audio: str | None = None
    video: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Fields present, so an ablation can tell which items a stream covers."""
        return tuple(name for name in ("text", *MEDIA_FIELDS) if getattr(self, name) is not None)


@dataclass(frozen=True)
class CorpusItem(EvalItem):
    """A corpus document. ``title`` is kept apart from ``text`` as in BEIR; see :attr:`full_text`."""

    title: str | None = None

    @property
    def full_text(self) -> str | None:
        """BEIR's document text: ``title + " " + text`` (whichever exist)."""
        parts = [p for p in (self.title, self.text) if p]
        return " ".join(parts) if parts else None

    @property
    def modalities(self) -> tuple[str, ...]:
        present = super().modalities
        return present if self.text is not None or self.title is None else ("text", *present)


@dataclass(frozen=True)
class QueryItem(EvalItem):
    """A query; text, media, or both (e.g. an audio question)."""


@dataclass(frozen=True)
class EvalDataset:
    """Corpus, queries and qrels loaded and cross-checked together."""

    corpus: list[CorpusItem]
    queries: list[QueryItem]
    qrels: dict[str, dict[str, int]]

    @property
    def judged_queries(self) -> list[QueryItem]:
        """Queries with at least one judgment: the ones worth running (BEIR runs only these)."""
        return [q for q in self.queries if self.qrels.get(q.id)]


def load_corpus(path: str | os.PathLike[str], *, check_media: bool = True) -> list[CorpusItem]:
    """Read a corpus JSONL: ``_id``/``id`` plus any of ``text``, ``title``, ``image``, ``audio``, ``video``.

    Other keys go to ``metadata``. With ``check_media`` a media path that does not exist is an error.

    Raises:
        EvalDataError: Every bad line (bad JSON, missing/duplicate id, empty item, missing media).
    """
    items = [
        CorpusItem(title=fields.pop("title"), **fields)
        for fields in _read_items(Path(path), allow_title=True, check_media=check_media)
    ]
    return items


def load_queries(path: str | os.PathLike[str], *, check_media: bool = True) -> list[QueryItem]:
    """Read a queries JSONL: ``_id``/``id`` plus ``text`` and/or media paths (see :func:`load_corpus`).

    Raises:
        EvalDataError: Every bad line.
    """
    return [
        QueryItem(**fields) for fields in _read_items(Path(path), allow_title=False, check_media=check_media)
    ]


def load_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Read qrels: BEIR TSV (``query-id\\tcorpus-id\\tscore``, header optional) or TREC ``qid 0 docid rel``.

    The format is fixed by the first non-blank line. Relevance must be an int (graded allowed;
    <= 0 is non-relevant). A pair judged twice with different relevance is an error; an exact
    duplicate line is ignored.

    Raises:
        EvalDataError: Every bad line, or a file with no judgment.
    """
    file = Path(path)
    problems: list[DataProblem] = []
    qrels: dict[str, dict[str, int]] = {}
    seen_at: dict[tuple[str, str], int] = {}
    fmt: Literal["tsv", "trec"] | None = None
    for number, line in _lines(file, problems):
        if fmt is None:
            if line.lower().split() == ["query-id", "corpus-id", "score"]:
                fmt = "tsv"
                continue
            if len(line.split("\t")) == 3:
                fmt = "tsv"
            elif len(line.split()) == 4:
                fmt = "trec"
            else:
                problems.append(
                    _problem(file, number, "not 'query-id<TAB>corpus-id<TAB>score' nor 'qid 0 docid rel'")
                )
                break
        cols = line.split("\t") if fmt == "tsv" else line.split()
        if fmt == "tsv" and len(cols) != 3:
            problems.append(_problem(file, number, f"expected 3 tab-separated columns, got {len(cols)}"))
            continue
        if fmt == "trec" and len(cols) != 4:
            problems.append(
                _problem(file, number, f"expected 4 whitespace-separated columns, got {len(cols)}")
            )
            continue
        qid, doc, raw = (cols[0], cols[1], cols[2]) if fmt == "tsv" else (cols[0], cols[2], cols[3])
        qid, doc = qid.strip(), doc.strip()
        if not qid or not doc:
            problems.append(_problem(file, number, "empty query or document id"))
            continue
        try:
            rel = int(raw.strip())
        except ValueError:
            problems.append(_problem(file, number, f"relevance {raw.strip()!r} is not an int"))
            continue
        previous = qrels.setdefault(qid, {}).get(doc)
        if previous is not None and previous != rel:
            first = seen_at[(qid, doc)]
            problems.append(
                _problem(file, number, f"({qid}, {doc}) judged {previous} on line {first}, now {rel}")
            )
            continue
        seen_at.setdefault((qid, doc), number)
        qrels[qid][doc] = rel
    if not problems and not qrels:
        problems.append(_problem(file, 0, "no judgment in file"))
    if problems:
        raise EvalDataError(problems)
    return qrels


def load_dataset(
    corpus: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    qrels: str | os.PathLike[str],
    *,
    check_media: bool = True,
    unknown_ids: Literal["error", "warn"] = "error",
) -> EvalDataset:
    """Load the three files and check that qrels only name known queries and documents.

    See the module docstring for what ``unknown_ids`` does and why errors are the default.

    Raises:
        EvalDataError: Any loader error, or (with ``unknown_ids="error"``) unknown ids in qrels.
    """
    if unknown_ids not in ("error", "warn"):
        raise EvalError(f"unknown_ids must be 'error' or 'warn', not {unknown_ids!r}")
    corpus_items = load_corpus(corpus, check_media=check_media)
    query_items = load_queries(queries, check_media=check_media)
    judgments = load_qrels(qrels)
    doc_ids = {item.id for item in corpus_items}
    query_ids = {item.id for item in query_items}
    problems = [
        DataProblem(os.fspath(qrels), 0, f"query '{qid}' is not in {os.fspath(queries)}")
        for qid in judgments
        if qid not in query_ids
    ]
    problems += [
        DataProblem(os.fspath(qrels), 0, f"document '{doc}' (query '{qid}') is not in {os.fspath(corpus)}")
        for qid, docs in judgments.items()
        for doc in docs
        if doc not in doc_ids
    ]
    if problems and unknown_ids == "error":
        raise EvalDataError(problems)
    for problem in problems:
        warnings.warn(str(problem), EvalDataWarning, stacklevel=2)
    kept = {qid: docs for qid, docs in judgments.items() if qid in query_ids}
    return EvalDataset(corpus=corpus_items, queries=query_items, qrels=kept)


def _problem(file: Path, line: int, reason: str) -> DataProblem:
    return DataProblem(os.fspath(file), line, reason)


def _lines(file: Path, problems: list[DataProblem]) -> Iterator[tuple[int, str]]:
    """Non-blank lines with 1-based numbers; an unreadable file becomes a problem, not a traceback."""
    try:
        handle = file.open(encoding="utf-8-sig")
    except OSError as exc:
        problems.append(_problem(file, 0, f"cannot open: {exc.strerror or exc}"))
        return
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            problems.append(_problem(file, 0, f"not UTF-8: {exc.reason}"))


def _read_items(file: Path, *, allow_title: bool, check_media: bool) -> list[dict[str, Any]]:
    problems: list[DataProblem] = []
    items: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    base = file.parent
    for number, line in _lines(file, problems):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(_problem(file, number, f"invalid JSON ({exc.msg}, column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            problems.append(_problem(file, number, f"expected a JSON object, got {type(record).__name__}"))
            continue
        parsed = _parse_item(record, base, allow_title=allow_title, check_media=check_media)
        if isinstance(parsed, str):
            problems.append(_problem(file, number, parsed))
            continue
        if parsed["id"] in first_line:
            problems.append(
                _problem(
                    file, number, f"duplicate id '{parsed['id']}' (first on line {first_line[parsed['id']]})"
                )
            )
            continue
        first_line[parsed["id"]] = number
        items.append(parsed)
    if not problems and not items:
        problems.append(_problem(file, 0, "no item in file"))
    if problems:
        raise EvalDataError(problems)
    return items


def _parse_item(
    record: Mapping[str, Any], base: Path, *, allow_title: bool, check_media: bool
) -> dict[str, Any] | str:
    """The dataclass fields of one record, or the reason it is unusable."""
    ids = [record[key] for key in _ID_FIELDS if record.get(key) is not None]
    if not ids:
        return "no '_id' or 'id'"
    if len({str(i) for i in ids}) > 1:
        return f"'_id' {ids[0]!r} and 'id' {ids[1]!r} disagree"
    if isinstance(ids[0], bool) or not isinstance(ids[0], (str, int)) or not str(ids[0]).strip():
        return f"id {ids[0]!r} must be a non-empty string or an int"
    fields: dict[str, Any] = {"id": str(ids[0])}
    text_fields = _TEXT_FIELDS if allow_title else ("text",)
    for key in (*text_fields, *MEDIA_FIELDS):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            return f"'{key}' must be a string, got {type(value).__name__}"
        fields[key] = value if value and value.strip() else None
    for key in MEDIA_FIELDS:
        if fields[key] is not None:
            fields[key] = _resolve_media(fields[key], base)
            if check_media and "://" not in fields[key] and not os.path.isfile(fields[key]):
                return f"{key} file not found: {fields[key]}"
    if all(fields[key] is None for key in (*text_fields, *MEDIA_FIELDS)):
        return f"empty item: none of {', '.join((*text_fields, *MEDIA_FIELDS))}"
    reserved = {*_ID_FIELDS, *text_fields, *MEDIA_FIELDS}
    fields["metadata"] = {key: value for key, value in record.items() if key not in reserved}
    return fields


def _resolve_media(value: str, base: Path) -> str:
    """URLs stay as they are; paths become absolute, relative ones against the JSONL's folder."""
    if "://" in value:
        return value
    return os.path.abspath(base / os.path.expanduser(value))
