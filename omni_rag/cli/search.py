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
    from omni_rag.errors import MediaError
    from omni_rag.media import load_image, probe  # imports torch: seconds, far less than the model

    if not Path(value).is_file():
        raise CliError(f"{flag} {value}: no such file", ExitCode.USAGE)
    try:
        info = probe(value)
    except (MediaError, OSError) as error:
        raise CliError(f"{flag} {value}: cannot read it: {error}", ExitCode.USAGE) from error
    if flag == "--image":  # FFmpeg "probes" random bytes named .png as an image: decode it
        try:
            load_image(value)
        except MediaError as error:
            raise CliError(f"{flag} {value}: cannot read it: {error}", ExitCode.USAGE) from error
    fits = {"--image": info.kind == "image", "--audio": info.has_audio, "--video": info.has_video}
    if not fits[flag]:
        found = "nothing decodable" if info.kind == "unknown" else f"a {info.kind} file"
        raise CliError(f"{flag} {value}: holds {found}, no {flag[2:]} to embed", ExitCode.USAGE)


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
        raise CliError(f"cannot use the query: {error.field}: {error.reason}", ExitCode.USAGE) from error


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
