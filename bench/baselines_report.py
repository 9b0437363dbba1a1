"""Tables with significance from the files ``bench/baselines.py`` writes (``results.json.gz``).

Per collection and variant: mean ± sd over seeds of each seed's mean over the test queries (for
cross-validated collections a seed's run is the union of its five test folds); the p value is a paired
two-sided t-test over queries of the seed-averaged per-query values against the reference (BM25, or a
named variant), Holm–Bonferroni over every row × metric of the collection's table. Extra rows: a random
shuffle of BM25's top-100 (3 seeds) and, with ``--dense``, the MiniLM bi-encoder's own retrieval run.

    python bench/baselines_report.py docs/results/baselines/baselines-tuned.json.gz --dense outputs/dense
    python bench/baselines_report.py docs/results/baselines/sjtf.json.gz --reference tuned
    python bench/baselines_report.py --merge docs/results/baselines/sjtf.json.gz \
        docs/results/baselines/sjtf-seeds234.json.gz --reference tuned
    python bench/baselines_report.py --merge F... --reference tuned --seed-by-seed --pair mpp_a0.2_gr:mpp_a0.2

Several files give one report each; with ``--merge`` they give one report of their jobs together (more
seeds or variants from later device calls): jobs are keyed by collection, variant, seed and fold, and a
finished job of a later file replaces the same key of an earlier one, which an unfinished one never does.

``--seed-by-seed`` adds, per collection, each variant against the reference seed for seed on nDCG@10 (the
reranker alone, then fused), and with ``--pair A:B`` variant A against variant B: Δ per seed (a tie within
±0.0005), seed and query wins / ties / losses, and the uncorrected p over the seed-averaged values of the
seeds both have.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from auxir.evaluation.compare import TIE_TOLERANCE, holm_bonferroni, paired_t_test


def load(path: str) -> dict:
    with gzip.open(path, "rt") as f:
        return json.load(f)


def merge(datasets: list[dict]) -> dict:
    """One results dict of several: later files add jobs to earlier ones (see the module docstring)."""
    metrics = datasets[0]["metrics"]
    for data in datasets[1:]:
        if data["metrics"] != metrics:
            raise SystemExit(f"--merge: metrics differ between files: {metrics} vs {data['metrics']}")
    jobs: dict[tuple, dict] = {}
    shuffled: dict = {}
    for data in datasets:
        for job in data["jobs"]:
            key = (job["collection"], job["variant"], job["seed"], job["fold"])
            if key not in jobs or job["status"] == "done":
                jobs[key] = job
        for collection, runs in data.get("shuffled", {}).items():
            shuffled.setdefault(collection, runs)  # the same BM25 run shuffled: the first file's is kept
    return {
        "suite": datasets[0].get("suite"),
        "metrics": metrics,
        "jobs": list(jobs.values()),
        "shuffled": shuffled,
    }


def seed_runs(jobs: list[dict], kind: str) -> dict[tuple[str, str], dict[int, dict[str, dict[str, float]]]]:
    """(collection, variant) -> seed -> metric -> query -> value (folds of a seed merged)."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for job in jobs:
        if job["status"] != "done" or kind not in job.get("per_query", {}):
            continue
        for metric, values in job["per_query"][kind].items():
            out[(job["collection"], job["variant"])][job["seed"]][metric].update(values)
    return out


def averaged(per_seed: dict[int, dict[str, dict[str, float]]], metric: str) -> dict[str, float]:
    """query -> mean over the seeds that have it."""
    values: dict[str, list[float]] = defaultdict(list)
    for runs in per_seed.values():
        for qid, v in runs[metric].items():
            values[qid].append(v)
    return {q: sum(v) / len(v) for q, v in values.items()}


def summary(per_seed, metric: str) -> tuple[float, float, int]:
    means = [statistics.fmean(runs[metric].values()) for runs in per_seed.values()]
    return statistics.fmean(means), statistics.stdev(means) if len(means) > 1 else 0.0, len(means)


def seed_by_seed_row(
    runs: dict, collection: str, variant: str, reference: str, metric: str = "nDCG@10"
) -> str:
    """One variant against another on the seeds both have: Δ per seed, seed and query W/T/L, paired p."""
    mine, theirs = runs[(collection, variant)], runs[(collection, reference)]
    seeds = sorted(set(mine) & set(theirs))
    deltas = [
        statistics.fmean(mine[s][metric].values()) - statistics.fmean(theirs[s][metric].values())
        for s in seeds
    ]
    x, y = (averaged({s: r[s] for s in seeds}, metric) for r in (mine, theirs))
    queries = sorted(x)
    p = paired_t_test([x[q] for q in queries], [y[q] for q in queries]).p
    return (
        f"| {variant} | {', '.join(map(str, seeds))} | {', '.join(f'{d:+.3f}' for d in deltas)} "
        f"| {statistics.fmean(deltas):+.4f} | {wins_ties_losses(deltas, tie=0.0005)} "
        f"| {wins_ties_losses([x[q] - y[q] for q in queries])} | {p:.2g} |"
    )


def wins_ties_losses(diffs: list[float], tie: float = TIE_TOLERANCE) -> str:
    """``W/T/L`` of differences (run minus reference), a difference within ±``tie`` counting as a tie."""
    wins, losses = sum(d > tie for d in diffs), sum(d < -tie for d in diffs)
    return f"{wins}/{len(diffs) - wins - losses}/{losses}"


def seed_by_seed(data: dict, reference: str, pairs: list[tuple[str, str]]) -> str:
    header = [
        "| variant | seeds | Δ per seed | mean Δ | seeds W/T/L | queries W/T/L | p, uncorrected |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    lines = []
    for kind in ("reranked", "fused"):
        runs = seed_runs(data["jobs"], kind)
        for collection in dict.fromkeys(c for c, _ in runs):
            variants = [v for c, v in runs if c == collection and v != reference]
            if (collection, reference) not in runs or not variants:
                continue
            lines += [
                f"### {collection}: {kind}, each variant against {reference}, seed by seed",
                "",
                *header,
            ]
            lines += [seed_by_seed_row(runs, collection, v, reference) for v in variants] + [""]
            todo = [
                (a, b)
                for a, b in pairs
                if kind == "reranked" and {(collection, a), (collection, b)} <= set(runs)
            ]
            if todo:
                lines += [f"### {collection}: {kind}, variant against variant, seed by seed", "", *header]
                lines += [seed_by_seed_row(runs, collection, a, b) for a, b in todo] + [""]
    return "\n".join(lines)


def dense_rows(dense_dir: Path | None, collection: str, queries: set[str], metrics: list[str], qrels) -> dict:
    if dense_dir is None or not (dense_dir / f"{collection}.trec").exists():
        return {}
    from auxir.data.trec import read_run
    from auxir.evaluation.metrics import evaluate

    run = [s for s in read_run(dense_dir / f"{collection}.trec") if s.query_id in queries]
    per_query = evaluate(run, qrels, metrics).per_query
    return {0: {m: {q: per_query[m].get(q, 0.0) for q in queries} for m in metrics}}


def report(
    data: dict,
    reference: str | None,
    dense_dir: Path | None,
    data_root: Path,
    first_stage_rows: dict[str, str] | None = None,
    fused_label: str = "BM25",
) -> str:
    metrics = data["metrics"]
    reranked, fused, first = (seed_runs(data["jobs"], k) for k in ("reranked", "fused", "first_stage"))
    lines = []
    for collection in dict.fromkeys(c for c, _ in reranked):
        rows: dict[str, dict] = {}
        firsts = [v for (c, _), v in first.items() if c == collection]
        rows["BM25 (first stage)"] = {0: next(iter(firsts[0].values()))}
        queries = set(next(iter(rows["BM25 (first stage)"][0].values())))
        shuffled = data.get("shuffled", {}).get(collection)
        if shuffled:
            rows["BM25 top-100, random order (3 seeds)"] = {int(s): v for s, v in shuffled.items()}
        overrides = next(j["overrides"] for j in data["jobs"] if j["collection"] == collection)
        eval_split = next((o.split("=")[1] for o in overrides if o.startswith("data.eval_split=")), "test")
        for variant, label in (first_stage_rows or {}).items():
            # another variant's first stage (e.g. the untrained MiniLM's own retrieval, BM25 at depth 1000)
            if (collection, variant) in first:
                per_seed = first[(collection, variant)]
                rows[label] = {0: per_seed[min(per_seed)]}
        if dense_dir is not None:
            from auxir.data.dataset import load_dataset

            qrels = load_dataset(str(data_root / collection)).qrels(eval_split)
            dense = dense_rows(dense_dir, collection, queries, metrics, qrels)
            if dense:
                rows["MiniLM-L6 bi-encoder, own retrieval (FAISS flat)"] = dense
        for (c, variant), per_seed in reranked.items():
            if c == collection:
                rows[variant] = per_seed
                if (c, variant) in fused:
                    rows[f"{variant} ⊕ {fused_label}"] = fused[(c, variant)]
        base_name = reference if reference in rows else "BM25 (first stage)"
        base = {m: averaged(rows[base_name], m) for m in metrics}
        tests = {}
        for name, per_seed in rows.items():
            if name == base_name:
                continue
            for m in metrics:
                run = averaged(per_seed, m)
                common = sorted(set(run) & set(base[m]))
                tests[(name, m)] = paired_t_test([run[q] for q in common], [base[m][q] for q in common]).p
        keys = list(tests)
        corrected = dict(zip(keys, holm_bonferroni([tests[k] for k in keys])))
        n_queries = len(queries)
        lines += [
            f"### {collection} ({n_queries} test queries; p against {base_name}, Holm over the table)",
            "",
        ]
        lines.append("| run | seeds | " + " | ".join(metrics) + " |")
        lines.append("|---|---:|" + "---:|" * len(metrics))
        for name, per_seed in rows.items():
            cells = []
            for m in metrics:
                mean, sd, n = summary(per_seed, m)
                cell = f"{mean:.4f}" + (f" ± {sd:.4f}" if n > 1 else "")
                if (name, m) in corrected and not math.isnan(corrected[(name, m)]):
                    p = corrected[(name, m)]
                    cell += f" (p={p:.2g}{'†' if p <= 0.05 else ''})"
                cells.append(cell)
            lines.append(f"| {name} | {len(per_seed)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+")
    parser.add_argument(
        "--reference", default=None, help="variant the others are tested against (default BM25)"
    )
    parser.add_argument(
        "--merge", action="store_true", help="one report of all files' jobs (later files add to earlier ones)"
    )
    parser.add_argument("--dense", type=Path, default=None, help="folder of <collection>.trec dense runs")
    parser.add_argument(
        "--first-stage-row",
        action="append",
        default=[],
        metavar="VARIANT=LABEL",
        help="a row of VARIANT's first stage (its first seed), named LABEL; --reference may name it",
    )
    parser.add_argument("--fused-label", default="BM25", help="what fused rows say they are fused with")
    parser.add_argument("--variants", nargs="*", default=None, help="only these variants (Holm over them)")
    parser.add_argument(
        "--seed-by-seed", action="store_true", help="also each variant against --reference, per seed"
    )
    parser.add_argument(
        "--pair", action="append", default=[], metavar="A:B", help="with --seed-by-seed: variant A against B"
    )
    parser.add_argument(
        "--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = parser.parse_args()
    if args.seed_by_seed and args.reference is None:
        parser.error("--seed-by-seed needs --reference (a variant)")
    pairs = [tuple(item.split(":", 1)) for item in args.pair]
    if any(len(pair) != 2 for pair in pairs):
        parser.error(f"--pair takes A:B (two variants), got {args.pair}")
    datasets = [load(path) for path in args.results]
    if args.merge:
        datasets = [merge(datasets)]
    known = {job["variant"] for data in datasets for job in data["jobs"]}
    if unknown := sorted({v for pair in pairs for v in pair} - known):
        parser.error(f"--pair names variants the results do not have: {', '.join(unknown)}")
    for data in datasets:
        if args.variants:
            data["jobs"] = [j for j in data["jobs"] if j["variant"] in args.variants]
        rows = dict(item.split("=", 1) for item in args.first_stage_row)
        print(report(data, args.reference, args.dense, args.data_root, rows, args.fused_label))
        if args.seed_by_seed:
            print(seed_by_seed(data, args.reference, pairs))


if __name__ == "__main__":
    main()
