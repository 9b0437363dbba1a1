"""``auxir fuse``: interpolate a reranked run with its first stage (per-query normalised scores).

    auxir fuse --reranked rr.trec --first-stage bm25.trec --out fused.trec --weight 0.6
    auxir fuse --reranked rr.test.trec --first-stage bm25.test.trec --out fused.trec \\
        --choose-on rr.dev.trec bm25.dev.trec --dataset ../shared/data/scifact --split dev --metric nDCG@10

With ``--choose-on`` the weight is the best of 0.0, 0.05, ..., 1.0 on the validation runs against the
judgements of ``--split`` (ties go to the reranker), printed with the whole curve, then used on the main runs.
Runs are files, or with ``--dataset`` the names of the dataset's runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from auxir.cli.evaluate import load_run, open_dataset
from auxir.data.trec import write_run
from auxir.evaluation.fusion import NormMethod, choose_weight, fuse
from auxir.evaluation.metrics import VALID_EXAMPLES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fuse",
        help="interpolate a reranked run with its first stage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reranked", required=True, help="the reranked run")
    parser.add_argument("--first-stage", required=True, help="the first-stage run it reranked")
    parser.add_argument("--out", type=Path, required=True, help="write the fused run here (TREC)")
    weight = parser.add_mutually_exclusive_group(required=True)
    weight.add_argument("--weight", type=float, help="weight of the reranker, in [0, 1]")
    weight.add_argument(
        "--choose-on",
        nargs=2,
        metavar=("VALID_RERANKED", "VALID_FIRST_STAGE"),
        help="choose the weight on these validation runs (needs --dataset)",
    )
    parser.add_argument("--dataset", help="a BEIR directory or irds:<ir_datasets id> (judgements of --split)")
    parser.add_argument("--split", default="dev", help="split whose qrels choose the weight (default: dev)")
    parser.add_argument(
        "--method",
        choices=get_args(NormMethod),
        default="minmax",
        help="per-query normalisation (default: minmax)",
    )
    parser.add_argument(
        "--metric",
        default="nDCG@10",
        help=f"metric that chooses the weight, e.g. {VALID_EXAMPLES} (default: nDCG@10)",
    )
    parser.add_argument(
        "--rel", type=int, default=None, help="relevance threshold for binary metrics (TREC DL: 2)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.choose_on is not None and args.dataset is None:
        raise ValueError("fuse: --choose-on needs --dataset, whose --split judgements choose the weight")
    dataset = open_dataset(args)
    weight = args.weight
    if args.choose_on is not None:
        valid_reranked, valid_first_stage = (load_run(spec, dataset) for spec in args.choose_on)
        choice = choose_weight(
            valid_reranked,
            valid_first_stage,
            dataset.qrels(args.split),
            metric=args.metric,
            method=args.method,
            rel=args.rel,
        )
        print(f"weight  {args.metric} ({args.split}, {args.method})")
        for w, value in choice.curve.items():
            print(f"{w:6.2f}  {value:.4f}{'  <- chosen' if w == choice.weight else ''}")
        print(f"chosen weight: {choice.weight:g} ({args.metric} {choice.value:.4f} on {args.split})")
        weight = choice.weight
    fused = fuse(load_run(args.reranked, dataset), load_run(args.first_stage, dataset), weight, args.method)
    write_run(args.out, fused)
    print(f"fused run (weight {weight:g}, {args.method}): {args.out}")
    return 0
