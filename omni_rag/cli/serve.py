"""``omni-rag serve``: the search page and HTTP API over one collection (``omni-rag[serve]``).

Checks run cheapest first, so a refused host, a missing extra or a typo in the collection name
is reported in a second, before the model loads.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
from functools import partial
from typing import TYPE_CHECKING, cast

from omni_rag.cli.connect import open_store
from omni_rag.cli.errors import EXIT_CODE_HELP, CliError, ExitCode
from omni_rag.cli.model import embedder_from_args
from omni_rag.cli.options import model_options, store_options

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder
    from omni_rag.retriever import OmniRetriever

#: Queries per forward pass by default: one micro-batch of concurrent requests.
SERVE_BATCH_SIZE = 64


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``serve`` subcommand and its flags."""
    serve = commands.add_parser(
        "serve",
        help="a search page that plays the hit, and an HTTP API (needs omni-rag[serve])",
        description="Serve a search page (GET /) and an HTTP API (/api/search, /media, docs at /docs) "
        "for one collection, loading the model once. Binds 127.0.0.1 unless --host says otherwise; "
        "any other host needs --api-key.",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    store_options(serve, key_flag="--qdrant-api-key")
    model_options(serve)
    serve.set_defaults(batch_size=SERVE_BATCH_SIZE)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--api-key",
        help="key every /api and /media request must carry (Authorization: Bearer KEY or api-key: KEY); "
        "default $OMNI_RAG_API_KEY; required for a non-loopback --host",
    )
    serve.add_argument(
        "--max-upload-mb", type=float, default=200.0, metavar="MB", help="largest query upload (default: 200)"
    )


def run_serve(args: argparse.Namespace) -> int:
    """The ``serve`` command: check, open the store, load the model, serve until interrupted."""
    from omni_rag.retriever import ModelMismatchError, OmniRetriever
    from omni_rag.serve.auth import bind_problem, resolve_api_key
    from omni_rag.serve.model_process import EmbedderProcess, ModelProcessError

    api_key = resolve_api_key(args.api_key)
    problem = bind_problem(args.host, api_key)
    if problem is not None:
        raise CliError(problem, ExitCode.USAGE)
    if not 0 < args.port < 65536 or args.max_upload_mb <= 0:
        raise CliError("--port must be 1-65535 and --max-upload-mb > 0", ExitCode.USAGE)
    _check_port(args.host, args.port)
    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(
            f"omni-rag serve needs {', '.join(missing)}: pip install 'omni-rag[serve]'", ExitCode.USAGE
        )
    store = open_store(
        args.collection, path=args.store, url=args.url, api_key=args.qdrant_api_key, must_exist=True
    )
    try:
        with EmbedderProcess(partial(load_model, args)) as embedder:
            # the process offers OmniEmbedder's embedding methods and identity: what the retriever uses
            retriever = OmniRetriever(cast("OmniEmbedder", embedder), store)
            try:
                retriever.check_model()
            except ModelMismatchError as error:
                raise CliError(str(error), ExitCode.MODEL_MISMATCH) from error
            _serve(retriever, args, api_key)
    except ModelProcessError as error:
        raise CliError(str(error), ExitCode(error.code) if error.code else ExitCode.MODEL_LOAD) from error
    finally:
        store.close()
    return 0


def load_model(args: argparse.Namespace) -> OmniEmbedder:
    """The model, as the other commands load it (run in the model process)."""
    from omni_rag.cli import quiet_libraries

    quiet_libraries()
    return embedder_from_args(args)


def _check_port(host: str, port: int) -> None:
    """Fail in a second, before the model loads, when the address cannot be listened on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as error:
        raise CliError(f"cannot listen on {host}:{port}: {error}", ExitCode.USAGE) from error


def _serve(retriever: OmniRetriever, args: argparse.Namespace, api_key: str | None) -> None:
    import uvicorn

    from omni_rag.serve import ServeConfig, create_app

    config = ServeConfig(
        api_key=api_key,
        max_upload_mb=args.max_upload_mb,
        max_batch=args.batch_size,
    )
    app = create_app(retriever, config)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"omni-rag: serving collection {retriever.store.collection!r} ({retriever.store.count()} points) "
        f"at http://{shown}:{args.port}/ (API docs at /docs; Ctrl-C stops)",
        flush=True,
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises it again: as an exception here, so the
    # caller's `with` closes the model process (and its store) before this process ends
    signal.signal(signal.SIGTERM, _terminated)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


def _terminated(number: int, frame: object) -> None:
    raise SystemExit(128 + number)
