"""``auxir folds``: k cross-validation folds over the judged queries of a split (SJTF / CEDR protocol).

    auxir folds --dataset ../shared/data/scifact --split test -k 5 --seed 0 --out folds.json

Fold i: test = part i, valid = part (i+1) mod k, train = the rest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auxir.cli.evaluate import add_qrels_arguments, load_qrels, open_dataset
from auxir.evaluation.folds import make_folds, save_folds


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "folds",
        help="cross-validation folds over queries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_qrels_arguments(parser)
    parser.add_argument("-k", type=int, default=5, help="number of folds (default 5, at least 3)")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dataset = open_dataset(args)
    query_ids = sorted({qrel.query_id for qrel in load_qrels(args, dataset)})
    folds = make_folds(query_ids, k=args.k, seed=args.seed)
    source = (
        {"dataset": str(args.dataset), "split": args.split}
        if dataset is not None
        else {"qrels": str(args.qrels)}
    )
    save_folds(args.out, folds, metadata={**source, "k": args.k, "seed": args.seed})
    sizes = ", ".join(f"{len(fold.test)}" for fold in folds)
    print(f"{len(query_ids)} queries in {args.k} folds (test sizes {sizes}); wrote {args.out}")
    return 0
