"""``omni-rag verify``: the checks only the real weights can pass, run on the user's machine.

CLI glue only; the steps live in :mod:`omni_rag.verify`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from omni_rag.cli.errors import EXIT_CODE_HELP, ExitCode
from omni_rag.cli.model import locate_model


def add_parser(commands: Any) -> None:
    """Register ``verify`` on the top-level subparsers."""
    parser = commands.add_parser(
        "verify",
        help="check a checkpoint on this machine: loading, card parity, attention, retrieval, speed",
        description="Check a checkpoint on this machine in five steps (environment, loading, fidelity "
        "against the model card's recipe, retrieval on examples/media, speed); each prints pass, fail "
        "or skipped with the reason. Attach the --json output to bug reports.",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        "-m",
        metavar="NAME_OR_PATH",
        help="hub id or local folder (default: $OMNI_RAG_MODEL, else nvidia/omni-embed-nemotron-3b)",
    )
    parser.add_argument("--device", help="torch device, e.g. cuda, cuda:1, cpu (default: CUDA if available)")
    parser.add_argument("--dtype", help="float32, bfloat16, ... (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument(
        "--examples", metavar="DIR", help="folder with media/ and queries/ (default: the repo's)"
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="run the checkpoint's own modelling code instead of transformers' native classes",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_verify(args: argparse.Namespace) -> int:
    """The ``verify`` command: exit 0 when every step passed or was skipped."""
    name = locate_model(args.model)  # fails in about a second when the hub is unreachable
    from omni_rag.verify import verify

    kwargs = {} if args.trust_remote_code is None else {"trust_remote_code": args.trust_remote_code}
    report = verify(
        name, device=args.device, dtype=args.dtype, examples=args.examples, embedder_kwargs=kwargs
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    if report.ok:
        return int(ExitCode.OK)
    if report.step("loading").status == "fail":
        return int(ExitCode.MODEL_LOAD)
    return int(ExitCode.VERIFY_FAILED)
