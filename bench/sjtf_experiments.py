"""SJTF experiment grid: pairwise hinge without and with MQP (α 0.05 / 0.2), MPP and MQP_ALL, several seeds.

Train→test collections (SciFact train→test, NFCorpus train→dev) and 5-fold cross-validation
collections (Cranfield, Vaswani: three folds train, one validation, one test, as CEDR/SJTF on Robust04).
BM25 top-100 is reranked. Per-query metrics are averaged over seeds and tested against the no-MQP
model (paired two-sided t-test, Holm–Bonferroni over the variants × metrics of a collection).

    python bench/sjtf_experiments.py --data-root ../shared/data --model sentence-transformers/all-MiniLM-L6-v2 \
        --out outputs/sjtf --split-datasets scifact:train:test nfcorpus:train:dev --cv-datasets cranfield vaswani

Prints a short table last; writes every run's metrics to ``<out>/sjtf_results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

# name -> (auxiliary objectives beside the pairwise hinge, extra recipe overrides)
VARIANTS = {
    "hinge": ([], []),
    "mqp_a0.05": ([{"name": "mqp", "weight": 0.05}], []),
    "mqp_a0.2": ([{"name": "mqp", "weight": 0.2}], []),
    "mpp_a0.2": ([{"name": "mpp", "weight": 0.2}], []),
    "mqp_all_a0.2": ([{"name": "mqp_all", "weight": 0.2}], []),
    # Diagnostics of the tied decoder's large gradients (see docs/results/sjtf.md).
    "mqp_a0.05_untied": ([{"name": "mqp", "weight": 0.05}], ["architecture.token_head=untied"]),
    "mqp_a0.2_untied": ([{"name": "mqp", "weight": 0.2}], ["architecture.token_head=untied"]),
    "mqp_a0.2_mlmhead": ([{"name": "mqp", "weight": 0.2}], ["architecture.token_head_transform=true"]),
    "mqp_a0.05_noclip": ([{"name": "mqp", "weight": 0.05}], ["training.max_grad_norm=null"]),
}


def overrides_for(variant: str, args) -> list[str]:
    extra_objectives, extra_overrides = VARIANTS[variant]
    objectives = [{"name": "pairwise_hinge", "weight": 1.0, "params": {"margin": 1.0}}] + extra_objectives
    return extra_overrides + [
        f"model={args.model}",
        "objectives=" + json.dumps(objectives),
        f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch_size}",
        f"training.learning_rate={args.lr}",
        "training.progress=false",
        "training.log_every=50",
        f"samples.num_negatives={args.negatives}",
        f"samples.max_positives_per_query={args.max_positives}",
        f"architecture.max_length={args.max_length}",
    ]


def evaluate_run(path: Path, qrels, metrics):
    from auxir.data.trec import read_run
    from auxir.evaluation.metrics import evaluate

    return evaluate(read_run(path), qrels, metrics)


def collection_runs(name, ds, args, out: Path, folds=None, eval_split="test", train_split="train"):
    """Train every variant × seed (× fold); return {variant: {seed: [reranked run paths]}}."""
    from auxir.data.trec import write_run
    from auxir.experiment import run_experiment
    from auxir.recipe import load_recipe
    from auxir.retrieval.bm25 import BM25Config, BM25Index

    bm25_path = out / name / "bm25.trec"
    if not bm25_path.exists():
        index = BM25Index.build(ds.docs, BM25Config(k1=0.9, b=0.4))
        write_run(bm25_path, index.search(ds.queries, k=100), tag="bm25")
    paths: dict[str, dict[int, list[Path]]] = {}
    records = []
    for variant in args.variants:
        for seed in args.seeds:
            for fold in range(len(folds) if folds else 1):
                run_dir = out / name / variant / f"seed{seed}" / (f"fold{fold}" if folds else "")
                overrides = overrides_for(variant, args) + [
                    f"data.dataset={args.data_root}/{name}",
                    f"data.first_stage={bm25_path}",
                    f"data.eval_split={eval_split}",
                    f"data.train_split={train_split}",
                    f"training.output_dir={run_dir}",
                    f"training.seed={seed}",
                    f"samples.seed={seed}",
                ]
                if folds:
                    overrides += [f"data.folds={out / name / 'folds.json'}", f"data.fold={fold}"]
                started = time.perf_counter()
                result = run_experiment(load_recipe("monobert", overrides))
                records.append(
                    {
                        "collection": name,
                        "variant": variant,
                        "seed": seed,
                        "fold": fold if folds else None,
                        "reranked": result.reranked,
                        "first_stage": result.first_stage,
                        "train_steps": result.train.steps,
                        "train_pairs_per_second": result.train.pairs_per_second,
                        "best_valid": result.train.best_metric,
                        "seconds": time.perf_counter() - started,
                    }
                )
                with (out / "records.jsonl").open("a") as log_file:  # partial results survive a time-out
                    log_file.write(json.dumps(records[-1]) + "\n")
                print(
                    f"{name} {variant} seed {seed} fold {fold if folds else '-'}: {result.reranked} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
                paths.setdefault(variant, {}).setdefault(seed, []).append(result.run_path)
    return paths, records


def summarise(name, paths, qrels, metrics, bm25_path, query_ids):
    """Seed-averaged per-query metrics of each variant, tested against 'hinge'."""
    from auxir.data.trec import read_run
    from auxir.evaluation.compare import holm_bonferroni, paired_t_test
    from auxir.evaluation.metrics import evaluate

    per_variant = {}
    for variant, seeds in paths.items():
        seed_results = []
        for _, run_paths in sorted(seeds.items()):
            run = [s for p in run_paths for s in read_run(p)]
            seed_results.append(evaluate(run, qrels, metrics))
        per_variant[variant] = seed_results
    bm25 = evaluate([s for s in read_run(bm25_path) if s.query_id in query_ids], qrels, metrics)
    rows, tests = [], []
    for variant, results in per_variant.items():
        row = {"variant": variant}
        for m in metrics:
            values = [r.aggregate[m] for r in results]
            row[m] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
            if variant != "hinge":
                qids = sorted(
                    set.intersection(*(set(r.per_query[m]) for r in results + per_variant["hinge"]))
                )
                mine = [statistics.mean(r.per_query[m][q] for r in results) for q in qids]
                base = [statistics.mean(r.per_query[m][q] for r in per_variant["hinge"]) for q in qids]
                test = paired_t_test(mine, base)
                tests.append((variant, m, test.p, len(qids)))
        rows.append(row)
    corrected = holm_bonferroni([t[2] for t in tests])
    significance = {(v, m): (p, ph, n) for (v, m, p, n), ph in zip(tests, corrected)}
    return {
        "collection": name,
        "bm25": bm25.aggregate,
        "rows": rows,
        "tests": [
            {"variant": v, "metric": m, "p": p, "p_holm": ph, "queries": n}
            for (v, m), (p, ph, n) in significance.items()
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--split-datasets", nargs="*", default=[], help="name:train_split:eval_split")
    parser.add_argument("--cv-datasets", nargs="*", default=[])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS)[:5])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--cv-seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--max-positives", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from auxir.data.dataset import load_dataset
    from auxir.evaluation.folds import make_folds, save_folds

    out = Path(args.out)
    summaries, records = [], []
    for spec in args.split_datasets:
        name, train_split, eval_split = spec.split(":")
        ds = load_dataset(f"{args.data_root}/{name}")
        paths, recs = collection_runs(name, ds, args, out, eval_split=eval_split, train_split=train_split)
        records += recs
        qrels = ds.qrels(eval_split)
        summaries.append(
            summarise(
                name,
                paths,
                qrels,
                ["nDCG@10", "RR@10", "P@20"],
                out / name / "bm25.trec",
                set(ds.queries_for(eval_split)),
            )
        )
        (out / "sjtf_results.json").write_text(
            json.dumps({"summaries": summaries, "records": records}, indent=1)
        )
    seeds = args.seeds
    for name in args.cv_datasets:
        ds = load_dataset(f"{args.data_root}/{name}")
        folds = make_folds(sorted(ds.queries_for("test")), k=5, seed=0)
        save_folds(out / name / "folds.json", folds, {"collection": name})
        args.seeds = args.cv_seeds
        paths, recs = collection_runs(name, ds, args, out, folds=folds)
        args.seeds = seeds
        records += recs
        summaries.append(
            summarise(
                name,
                paths,
                ds.qrels("test"),
                ["nDCG@20", "P@20", "nDCG@10"],
                out / name / "bm25.trec",
                set(ds.queries_for("test")),
            )
        )
        (out / "sjtf_results.json").write_text(
            json.dumps({"summaries": summaries, "records": records}, indent=1)
        )
    (out / "sjtf_results.json").write_text(json.dumps({"summaries": summaries, "records": records}, indent=1))
    for s in summaries:
        metrics = [k for k in s["rows"][0] if k != "variant"]
        print(f"\n{s['collection']}  BM25: " + ", ".join(f"{m} {s['bm25'][m]:.4f}" for m in metrics))
        for row in s["rows"]:
            cells = []
            for m in metrics:
                mean, sd = row[m]
                t = next((t for t in s["tests"] if t["variant"] == row["variant"] and t["metric"] == m), None)
                mark = "" if t is None else f" p={t['p']:.3f}/{t['p_holm']:.3f}"
                cells.append(f"{m} {mean:.4f}±{sd:.4f}{mark}")
            print(f"  {row['variant']:14s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
