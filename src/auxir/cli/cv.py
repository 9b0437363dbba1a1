"""``auxir cv``: k-fold cross-validation of a recipe over the judged queries of one split.

    auxir cv --recipe monobert --dataset ../shared/data/cranfield --folds 5 --out outputs/cv/cranfield
    auxir cv --recipe sjtf-mqp --dataset ../shared/data/robust04 --folds-file cedr-folds.json --split test

For collections without a training split (Cranfield, Vaswani, ...), and for the SJTF / CEDR protocol. Fold i
trains on the train part, chooses checkpoints and the fusion weight on the valid part and reranks the test
part (see ``auxir folds``); its outputs go to ``<out>/fold<i>``. A fold whose ``metrics.json`` exists is
skipped, so an interrupted run goes on where it stopped. The folds' test runs are merged into
``<out>/first_stage.trec``, ``reranked.trec`` and ``fused.trec``, every judged query once, and compared with
significance tests in ``<out>/comparison.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auxir.cli.train import add_override_arguments, overrides_from_args
from auxir.evaluation.folds import Fold, load_folds, make_folds, save_folds


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cv",
        help="k-fold cross-validation of a recipe (collections without a train split)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--recipe", default=None, help="a recipe name in recipes/ or a YAML file")
    add_override_arguments(parser)
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5, at least 3)")
    parser.add_argument(
        "--folds-file", type=Path, help="folds written by `auxir folds` (instead of --folds and --seed)"
    )
    parser.add_argument(
        "--split", default="test", help="split whose judged queries are folded (default test)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the folds, training and samples (default 0)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/cv"), help="output directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auxir.data.dataset import load_dataset
    from auxir.data.records import ScoredDoc
    from auxir.data.trec import read_run, write_run
    from auxir.evaluation.compare import compare
    from auxir.experiment import run_experiment
    from auxir.io import atomic_write
    from auxir.recipe import load_recipe

    out: Path = args.out
    common = overrides_from_args(args) + [
        f"data.eval_split={args.split}",
        f"training.seed={args.seed}",
        f"samples.seed={args.seed}",
    ]
    recipe = load_recipe(args.recipe, common)
    ds = load_dataset(recipe.data.dataset)
    qrels = ds.qrels(args.split)  # names the dataset's splits when --split is not one of them
    out.mkdir(parents=True, exist_ok=True)
    if args.folds_file is not None:
        folds_path = args.folds_file
        folds = load_folds(folds_path)
    else:
        folds_path = out / "folds.json"
        folds = _fold_file(folds_path, sorted(ds.queries_for(args.split)), recipe.data.dataset, args)

    merged: dict[str, list[ScoredDoc]] = {"first_stage": [], "reranked": [], "fused": []}
    no_fused = []
    for i, fold in enumerate(folds):
        fold_dir = out / f"fold{i}"
        if (fold_dir / "metrics.json").is_file():
            print(f"fold {i}/{len(folds)}: {fold_dir / 'metrics.json'} exists, skipped")
        else:
            print(f"fold {i}/{len(folds)}: training on {len(fold.train)} queries ...", flush=True)
            fold_overrides = [
                f"data.folds={folds_path}",
                f"data.fold={i}",
                f"training.output_dir={fold_dir}",
            ]
            run_experiment(load_recipe(args.recipe, common + fold_overrides))
        # As split_queries does: the fold's test queries, at most max_eval_queries of them.
        test = set(list(fold.test)[: recipe.data.max_eval_queries])
        merged["first_stage"] += [s for s in read_run(fold_dir / "first_stage.trec") if s.query_id in test]
        merged["reranked"] += read_run(fold_dir / "reranked.trec")
        if (fold_dir / "fused.trec").is_file():
            merged["fused"] += read_run(fold_dir / "fused.trec")
        else:
            no_fused.append(i)

    first_stage = recipe.data.first_stage
    write_run(
        out / "first_stage.trec",
        merged["first_stage"],
        tag=first_stage if first_stage == "bm25" else "first_stage",
    )
    write_run(out / "reranked.trec", merged["reranked"], tag=recipe.name)
    runs = {"BM25": merged["first_stage"], "reranker": merged["reranked"]}
    if not no_fused:
        write_run(out / "fused.trec", merged["fused"], tag=f"{recipe.name}-fused")
        runs["reranker ⊕ BM25"] = merged["fused"]
    elif len(no_fused) < len(folds):
        print(f"no fused.trec in fold(s) {', '.join(map(str, no_fused))}: fused run left out")
    ev = recipe.evaluation
    table = compare(runs, "BM25", qrels, ev.metrics, rel=ev.rel).to_markdown()
    with atomic_write(out / "comparison.md") as handle:
        handle.write(table + "\n")
    print(table)
    judged = len({s.query_id for s in merged["reranked"]})
    print(f"\n{len(folds)} folds over '{args.split}', {judged} test queries; runs and table in {out}")
    return 0


def _fold_file(path: Path, query_ids: list[str], dataset: str, args: argparse.Namespace) -> list[Fold]:
    """Make the folds and save them to ``path``; refuse when ``path`` holds other folds (finished folds
    there were trained on them, so resuming with different ones would mix two splits)."""
    folds = make_folds(query_ids, k=args.folds, seed=args.seed)
    if path.is_file():
        if load_folds(path) != folds:
            raise ValueError(
                f"{path}: expected the folds of this run ({args.folds} folds, seed {args.seed}, "
                f"split {args.split!r}), found other folds; use another --out, or --folds-file {path}"
            )
        return folds
    metadata = {"dataset": dataset, "split": args.split, "k": args.folds, "seed": args.seed}
    save_folds(path, folds, metadata)
    print(f"{len(query_ids)} '{args.split}' queries in {args.folds} folds; wrote {path}")
    return folds
