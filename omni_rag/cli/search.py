"""``omni-rag search``: one query of any modality mix, fused across the chosen streams.

Query media are given by flag (``--image``, ``--audio``, ``--video``) and may be combined with
text, as the model embeds any mix into one vector. ``--video`` embeds the frames only; add
``--audio`` with the same file to include its soundtrack.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from omni_rag import Content
from omni_rag.cli.connect import open_store
from omni_rag.cli.errors import CliError, ExitCode
from omni_rag.cli.model import embedder_from_args
from omni_rag.cli.render import hits_to_json, render_hits
from omni_rag.errors import OmniInputError
from omni_rag.retriever import ModelMismatchError, OmniRetriever
from omni_rag.store import STREAMS, FusionMode, Hit


def parse_streams(value: str | None) -> list[str] | None:
    """``"audio,video"`` -> ``["audio", "video"]``; ``None`` means every stream.

    Raises:
        CliError: ``USAGE`` for a name that is not a stream.
    """
    if value is None:
        return None
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in STREAMS]
    if unknown or not names:
        raise CliError(f"--streams takes a comma list of {', '.join(STREAMS)}; got {value!r}", ExitCode.USAGE)
    return names


def build_query(
    text: str | None = None, *, image: str | None = None, audio: str | None = None, video: str | None = None
) -> Content:
    """The query item, checked now rather than after the model has loaded (seconds to minutes).

    Raises:
        CliError: ``USAGE`` when nothing is given, the text is blank, or a media file is missing,
            unreadable or holds no stream of its flag's kind.
    """
    if text is None and image is None and audio is None and video is None:
        raise CliError("give a query: QUERY text and/or --image/--audio/--video FILE", ExitCode.USAGE)
    if text is not None and not text.strip():
        raise CliError("the query text is empty", ExitCode.USAGE)
    for flag, value in (("--image", image), ("--audio", audio), ("--video", video)):
        if value is not None:
            _check_query_file(flag, value)
    return Content(text=text, image=image, audio=audio, video=video)


def _check_query_file(flag: str, value: str) -> None:
    if not Path(value).is_file():
        raise CliError(f"{flag} {value}: no such file", ExitCode.USAGE)
    problem = query_file_problem(flag[2:], value)
    if problem is not None:
        raise CliError(f"{flag} {value}: {problem}", ExitCode.USAGE)


def query_file_problem(kind: str, path: str) -> str | None:
    """Why the file at ``path`` cannot be the query's ``kind`` (image, audio, video); ``None`` if it can.

    Shared with ``omni-rag serve``, so an upload is refused in the same words as a flag.
    """
    from omni_rag.errors import MediaError
    from omni_rag.media import load_image, probe  # imports torch: seconds, far less than the model

    try:
        info = probe(path)
    except (MediaError, OSError) as error:
        return f"cannot read it: {error}"
    if kind == "image":  # FFmpeg "probes" random bytes named .png as an image: decode it
        try:
            load_image(path)
        except MediaError as error:
            return f"cannot read it: {error}"
    fits = {"image": info.kind == "image", "audio": info.has_audio, "video": info.has_video}
    if not fits[kind]:
        found = "nothing decodable" if info.kind == "unknown" else f"a {info.kind} file"
        return f"holds {found}, no {kind} to embed"
    return None


def search(
    retriever: OmniRetriever,
    query: Content,
    *,
    k: int = 10,
    streams: Sequence[str] | None = None,
    fusion: FusionMode = "mean",
) -> list[Hit]:
    """Run one query, turning the errors a user can fix into :class:`CliError`.

    Raises:
        CliError: ``MODEL_MISMATCH`` or ``USAGE`` (unreadable query media).
    """
    try:
        return retriever.search(query, k=k, streams=streams, fusion=fusion)
    except ModelMismatchError as error:
        raise CliError(str(error), ExitCode.MODEL_MISMATCH) from error
    except OmniInputError as error:
        raise CliError(query_error_message(error), ExitCode.USAGE) from error


def query_error_message(error: OmniInputError) -> str:
    """How a query the model could not embed is reported (by the CLI and by ``omni-rag serve``)."""
    return f"cannot use the query: {error.field}: {error.reason}"


def run_search(args: argparse.Namespace) -> int:
    """The ``search`` command."""
    if args.query is not None and args.text is not None:
        raise CliError("give the query text once: as QUERY or as --text", ExitCode.USAGE)
    query = build_query(
        args.query if args.query is not None else args.text,
        image=args.image,
        audio=args.audio,
        video=args.video,
    )
    streams = parse_streams(args.streams)
    store = open_store(args.collection, path=args.store, url=args.url, api_key=args.api_key, must_exist=True)
    try:
        embedder = embedder_from_args(args)
        hits = search(OmniRetriever(embedder, store), query, k=args.k, streams=streams, fusion=args.fusion)
    finally:
        store.close()
    print(json.dumps(hits_to_json(hits), indent=2) if args.json else render_hits(hits))
    return 0
