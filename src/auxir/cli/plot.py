"""``auxir plot``: the plots of a run folder written by ``auxir train``, as PNG files whose paths it prints.

    auxir plot outputs/sjtf                                   # training.png, scores.png, vs-first-stage.png
    auxir plot outputs/sjtf --baseline outputs/monobert       # + vs-monobert.png (its reranked.trec)
    auxir plot outputs/sjtf --baseline bm25.trec --metric RR@10 --out figures/sjtf

The judgements come from the dataset and test split of the folder's recipe.json, or from ``--qrels`` /
``--dataset`` when that dataset is elsewhere on this machine (a recipe keeps the path it was trained with).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="plots of a training run folder (PNG)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder written by auxir train")
    parser.add_argument("--out", type=Path, default=None, help="write the PNGs here (default: RUN_DIR)")
    parser.add_argument(
        "--baseline",
        default=None,
        help="another run folder (its reranked.trec) or a TREC run: also plot per-query differences against it",
    )
    parser.add_argument(
        "--metric", default="nDCG@10", help="metric of the per-query plots (default: nDCG@10)"
    )
    judgements = parser.add_mutually_exclusive_group()
    judgements.add_argument("--qrels", type=Path, help="qrels file to use instead of the recipe's dataset")
    judgements.add_argument(
        "--dataset", help="a BEIR directory or irds:<id> to use instead of the recipe's (its data.eval_split)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auxir.cli.evaluate import run_name
    from auxir.data.trec import read_qrels, read_run
    from auxir.plots import plot_run_dir, run_dir_qrels

    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"{args.run_dir}: no such run folder")
    qrels = None
    if args.qrels is not None:
        qrels = read_qrels(args.qrels)
    elif args.dataset is not None:
        qrels = run_dir_qrels(args.run_dir, args.dataset)
    baseline, baseline_name = None, "baseline"
    if args.baseline is not None:
        path = Path(args.baseline)
        if path.is_dir():
            baseline, baseline_name = read_run(path / "reranked.trec"), path.resolve().name
        elif path.is_file():
            baseline, baseline_name = read_run(path), run_name(args.baseline)
        else:
            raise FileNotFoundError(f"{path}: no such run folder or run file (--baseline)")
    written = plot_run_dir(
        args.run_dir,
        qrels,
        out_dir=args.out,
        metric=args.metric,
        baseline=baseline,
        baseline_name=baseline_name,
    )
    for path in written:
        print(path)
    return 0
