"""``auxir evaluate``: metrics of one run (ir_measures), printed as a table.

    auxir evaluate --run runs/bm25.trec --qrels qrels.txt --metrics nDCG@10 RR@10 R@100 --rel 2
    auxir evaluate --dataset ../shared/data/trec-dl-2019 --split test --run BM25.test --metrics nDCG@10

Also holds the argument helpers that ``compare`` and ``folds`` share (qrels from a file or a dataset, runs
from a file or a dataset's run name).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from auxir.data.records import Qrel, ScoredDoc
from auxir.data.trec import read_qrels, read_run
from auxir.evaluation.metrics import VALID_EXAMPLES, evaluate

if TYPE_CHECKING:
    from auxir.data.dataset import Dataset

logger = logging.getLogger(__name__)

DEFAULT_METRICS = ["nDCG@10", "RR@10", "R@100"]
_RUN_SUFFIXES = (".gz", ".trec", ".run", ".txt", ".tsv")


def add_qrels_arguments(parser: argparse.ArgumentParser) -> None:
    """``--qrels FILE`` or ``--dataset D [--split S]``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--qrels", type=Path, help="qrels file: TREC 'qid iter docid rel' or BEIR TSV with header"
    )
    source.add_argument("--dataset", help="a BEIR directory or irds:<ir_datasets id>; judgements of --split")
    parser.add_argument(
        "--split", default="test", help="split of --dataset whose qrels to use (default: test)"
    )


def add_metric_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=DEFAULT_METRICS,
        metavar="METRIC",
        help=f"ir_measures names, e.g. {VALID_EXAMPLES} (default: {' '.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--rel",
        type=int,
        default=None,
        help="relevance threshold for binary metrics (P, R, RR, AP, ...); TREC DL uses 2. nDCG stays graded",
    )
    parser.add_argument(
        "--missing",
        choices=["ignore", "zero"],
        default="ignore",
        help="judged queries absent from a run: ignore (trec_eval default) or score 0 (trec_eval -c)",
    )


def open_dataset(args: argparse.Namespace) -> Dataset | None:
    """The dataset named by ``--dataset``, or None when ``--qrels`` was given."""
    if getattr(args, "dataset", None) is None:
        return None
    from auxir.data.dataset import load_dataset

    return load_dataset(args.dataset)


def load_qrels(args: argparse.Namespace, dataset: Dataset | None) -> list[Qrel]:
    return dataset.qrels(args.split) if dataset is not None else read_qrels(args.qrels)


def run_name(spec: str) -> str:
    """``NAME=PATH`` -> NAME; a path -> its file name without run suffixes (``BM25.test.trec`` -> ``BM25.test``)."""
    if "=" in spec and not Path(spec).exists():
        return spec.split("=", 1)[0]
    name = Path(spec).name
    while name.endswith(_RUN_SUFFIXES) and "." in name:
        name = name[: name.rindex(".")]
    return name


def load_run(spec: str, dataset: Dataset | None) -> list[ScoredDoc]:
    """A run file, ``NAME=PATH``, or (with ``--dataset``) the name of one of the dataset's runs."""
    path = Path(spec)
    if not path.exists() and "=" in spec:
        path = Path(spec.split("=", 1)[1])
    if path.is_file():
        return read_run(path)
    if dataset is not None and spec in dataset.runs:
        return read_run(dataset.runs[spec])
    known = (
        f"; runs of the dataset: {', '.join(sorted(dataset.runs)) or 'none'}" if dataset is not None else ""
    )
    raise FileNotFoundError(f"{spec}: no such run file{known}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of one run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, help="run file (TREC), or a run name of --dataset")
    add_qrels_arguments(parser)
    add_metric_arguments(parser)
    parser.add_argument("--per-query", type=Path, default=None, help="write per-query values to this CSV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dataset = open_dataset(args)
    result = evaluate(
        load_run(args.run, dataset),
        load_qrels(args, dataset),
        args.metrics,
        rel=args.rel,
        missing=args.missing,
    )
    name = run_name(args.run)
    if result.coverage is not None:
        for warning in result.coverage.warnings():
            logger.warning("run %r: %s", name, warning)
    print(f"run: {name}")
    print(result.to_table())
    if args.per_query is not None:
        result.write_per_query_csv(args.per_query)
        print(f"per-query values: {args.per_query}")
    return 0
