"""``auxir compare``: runs against a baseline with paired t-tests, Holm–Bonferroni and win/tie/loss.

    auxir compare --baseline bm25.trec --runs tasb.trec splade.trec --qrels qrels.txt --rel 2 \\
        --metrics nDCG@10 RR@10 R@100 --markdown compare.md --per-query per_query.csv

Runs are files (named after the file: ``BM25.test.trec`` -> ``BM25.test``), ``NAME=PATH``, or with
``--dataset`` the names of the dataset's runs. The output says how many queries each mean is over and how
much of each run the qrels judge, and warns when the runs cover different queries (``--strict-queries``:
refuse instead) or barely overlap the qrels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auxir.cli.evaluate import (
    add_metric_arguments,
    add_qrels_arguments,
    load_qrels,
    load_run,
    open_dataset,
    run_name,
)
from auxir.evaluation.compare import compare
from auxir.io import atomic_write


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="runs against a baseline, with significance tests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--baseline", required=True, help="the baseline run")
    parser.add_argument("--runs", nargs="+", required=True, help="the runs to test against the baseline")
    add_qrels_arguments(parser)
    add_metric_arguments(parser)
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="significance level after correction (default 0.05)"
    )
    parser.add_argument(
        "--strict-queries",
        action="store_true",
        help="refuse (exit 2) when the runs were evaluated on different queries, instead of warning",
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the tables to this markdown file"
    )
    parser.add_argument(
        "--per-query", type=Path, default=None, help="write per-query values of every run to this CSV"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PNG",
        help="plot the per-query differences of the first run against the baseline on the first metric",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dataset = open_dataset(args)
    runs = {}
    for spec in [args.baseline, *args.runs]:
        name = run_name(spec)
        if name in runs:
            raise ValueError(f"compare: two runs are named {name!r}; name them with NAME=PATH")
        runs[name] = load_run(spec, dataset)
    comparison = compare(
        runs,
        run_name(args.baseline),
        load_qrels(args, dataset),
        args.metrics,
        rel=args.rel,
        alpha=args.alpha,
        missing=args.missing,
        strict=args.strict_queries,
    )
    table = comparison.to_markdown()
    print(table, end="")
    if args.markdown is not None:
        with atomic_write(args.markdown) as handle:
            handle.write(table)
    if args.per_query is not None:
        comparison.write_per_query_csv(args.per_query)
    if args.plot is not None:
        from auxir.plots import plot_per_query_differences

        first, metric = comparison.runs[1], comparison.metrics[0]
        plot_per_query_differences(
            comparison.results[first].per_query[metric],
            comparison.results[comparison.baseline].per_query[metric],
            metric,
            args.plot,
            names=(first, comparison.baseline),
        )
        print(f"plot: {args.plot}")
    return 0
