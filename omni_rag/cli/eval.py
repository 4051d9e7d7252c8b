"""``omni-rag eval``: score retrieval on a BEIR-style set, one configuration or the paper's whole ablation.

The data are checked before the model loads (a typo in qrels should cost a second, not a model
load), the corpus is embedded once for every configuration (:func:`omni_rag.eval.run_evaluation`),
and the results file records what produced the numbers so ``omni-rag eval --compare A B`` can tell
a real change from a changed setup.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omni_rag.cli.errors import EXIT_CODE_HELP, CliError, ExitCode
from omni_rag.cli.options import model_options

if TYPE_CHECKING:
    from omni_rag.eval import Configuration, EvalDataset, Evaluation

#: Paper references the chart can draw (NDCG@10 only, the paper's metric).
_PAPER_SETS = ("FineVideo", "LPM")


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``eval`` subcommand to ``omni-rag``'s subparsers."""
    from omni_rag.store import FUSION_MODES

    parser = commands.add_parser(
        "eval",
        help="score retrieval on corpus/queries/qrels; --ablation runs the paper's configurations",
        description="Embed a BEIR-style corpus once and score one configuration (--streams/--fusion)\n"
        "or every ablation configuration (--ablation) on it: prints a markdown table, writes a\n"
        "results JSON (--out) and a bar chart. --compare A B diffs two results files instead.",
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data (BEIR layout, media paths relative to the JSONL)")
    data.add_argument("--corpus", metavar="JSONL", help="corpus.jsonl: _id + text/title/image/audio/video")
    data.add_argument("--queries", metavar="JSONL", help="queries.jsonl: _id + text and/or media")
    data.add_argument("--qrels", metavar="TSV", help="qrels: query-id<TAB>corpus-id<TAB>score (or TREC)")
    data.add_argument(
        "--unknown-ids",
        choices=("error", "warn"),
        default="error",
        help="qrels naming unknown queries/documents: fail (default) or warn and keep a lower bound",
    )
    what = parser.add_argument_group("what to score")
    what.add_argument(
        "--ablation", action="store_true", help="every configuration (ignores --streams/--fusion)"
    )
    what.add_argument("--streams", metavar="LIST", help="comma list of text,image,audio,video (default: all)")
    what.add_argument("--fusion", choices=FUSION_MODES, default="mean", help="how stream scores combine")
    what.add_argument("--k", dest="ks", default="5,10", metavar="LIST", help="metric cutoffs (default 5,10)")
    what.add_argument(
        "--k-retrieve", type=int, default=100, metavar="N", help="documents kept per query (default 100)"
    )
    what.add_argument(
        "--skip-errors", action="store_true", help="leave out items that fail to embed (exit 1)"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="JSON", help="results file: config, model, packages, per-query scores")
    out.add_argument("--chart", metavar="PNG", help="bar chart (default with --ablation and --out: OUT.png)")
    out.add_argument("--metric", help="metric of the chart (default NDCG@10, else NDCG@<largest k>)")
    out.add_argument("--paper", choices=_PAPER_SETS, help="mark the paper's NDCG@10 on the chart")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    out.add_argument(
        "--compare", nargs=2, metavar=("A", "B"), help="diff two results files (nothing is embedded)"
    )
    model_options(parser)


def parse_ks(value: str) -> tuple[int, ...]:
    """``"5,10"`` -> ``(5, 10)``.

    Raises:
        CliError: ``USAGE`` for anything but positive integers.
    """
    try:
        ks = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
    except ValueError:
        ks = ()
    if not ks or ks[0] < 1:
        raise CliError(f"--k takes a comma list of positive integers, got {value!r}", ExitCode.USAGE)
    return ks


def run_eval(args: argparse.Namespace) -> int:
    """The ``eval`` command; returns 0, or 1 when ``--skip-errors`` left items out."""
    from omni_rag.eval import EvalDataError, EvalError, compare, metric_keys

    if args.compare:
        try:
            print(compare(args.compare[0], args.compare[1]), end="")
        except EvalError as error:
            raise CliError(str(error), ExitCode.USAGE) from error
        return int(ExitCode.OK)
    missing = [f"--{name}" for name in ("corpus", "queries", "qrels") if getattr(args, name) is None]
    if missing:
        raise CliError(f"give {', '.join(missing)} (or --compare A B)", ExitCode.USAGE)
    ks = parse_ks(args.ks)
    if args.k_retrieve < ks[-1]:
        raise CliError(
            f"--k-retrieve ({args.k_retrieve}) must be >= the largest --k ({ks[-1]})", ExitCode.USAGE
        )
    metric = args.metric or f"NDCG@{10 if 10 in ks else ks[-1]}"
    if metric not in metric_keys(ks):
        raise CliError(f"--metric {metric!r} is not one of {', '.join(metric_keys(ks))}", ExitCode.USAGE)
    configs = _configurations(args)
    try:
        dataset = _load(args)
    except EvalDataError as error:
        raise CliError(f"bad evaluation data:\n{error}", ExitCode.USAGE) from error
    except EvalError as error:
        raise CliError(str(error), ExitCode.USAGE) from error

    from omni_rag.cli.model import embedder_from_args
    from omni_rag.eval import EmbeddingError, run_evaluation

    embedder = embedder_from_args(args)
    try:
        evaluation = run_evaluation(
            embedder,
            dataset,
            configs=configs,
            ks=ks,
            k_retrieve=args.k_retrieve,
            errors="skip" if args.skip_errors else "raise",
            progress=not args.quiet,
        )
    except EmbeddingError as error:
        raise CliError(f"{error}\n(--skip-errors leaves such items out)", ExitCode.USAGE) from error
    except EvalError as error:
        raise CliError(str(error), ExitCode.USAGE) from error
    return _report(args, evaluation, ks=ks, metric=metric)


def _configurations(args: argparse.Namespace) -> list[str | Configuration]:
    from omni_rag.cli.search import parse_streams
    from omni_rag.eval import ABLATION_CONFIGS, EvalError, single_configuration

    if args.ablation:
        return list(ABLATION_CONFIGS)
    try:
        return [single_configuration(parse_streams(args.streams), args.fusion)]
    except EvalError as error:
        raise CliError(str(error), ExitCode.USAGE) from error


def _load(args: argparse.Namespace) -> EvalDataset:
    import warnings

    from omni_rag.eval import EvalDataWarning, load_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvalDataWarning)
        dataset = load_dataset(args.corpus, args.queries, args.qrels, unknown_ids=args.unknown_ids)
    for warning in caught:
        print(f"omni-rag: warning: {warning.message}", file=sys.stderr)
    return dataset


def _report(args: argparse.Namespace, evaluation: Evaluation, *, ks: tuple[int, ...], metric: str) -> int:
    """Print the table and notes, write the results file and chart; the exit code."""
    from omni_rag.eval import PAPER_NDCG10, EvalError, ablation_chart, ablation_table, results_json

    print(ablation_table(evaluation), end="")
    for name, why in evaluation.skipped.items():
        print(f"omni-rag: skipped {name}: {why}", file=sys.stderr)
    for failure in evaluation.failures:
        print(f"omni-rag: not embedded: {failure}", file=sys.stderr)
    timing = ", ".join(f"{phase} {s:.1f}s" for phase, s in evaluation.seconds.items())
    print(f"omni-rag: {timing}", file=sys.stderr)
    chart = args.chart or (str(Path(args.out).with_suffix(".png")) if args.out and args.ablation else None)
    try:
        if args.out:
            config = {
                "corpus": args.corpus,
                "queries": args.queries,
                "qrels": args.qrels,
                "ablation": bool(args.ablation),
                "ks": list(ks),
                "k_retrieve": args.k_retrieve,
                "device": args.device,
                "batch_size": args.batch_size,
                **evaluation.config_json(),
            }
            written = results_json(
                args.out,
                evaluation,
                config=config,
                model_id=evaluation.model_id,
                model_revision=evaluation.model_revision,
            )
            print(f"omni-rag: wrote {written}", file=sys.stderr)
        if chart:
            use_paper = args.paper is not None and metric == "NDCG@10"
            if args.paper is not None and not use_paper:
                print(f"omni-rag: --paper marks NDCG@10 only, not {metric}", file=sys.stderr)
            drawn = ablation_chart(
                evaluation,
                metric,
                chart,
                title=f"{metric} by configuration ({evaluation.model_id})",
                reference=PAPER_NDCG10[args.paper] if use_paper else None,
            )
            print(f"omni-rag: wrote {drawn}", file=sys.stderr)
    except EvalError as error:
        raise CliError(str(error), ExitCode.USAGE) from error
    except OSError as error:
        raise CliError(f"cannot write results: {error}", ExitCode.USAGE) from error
    return int(ExitCode.PARTIAL if evaluation.failures else ExitCode.OK)
