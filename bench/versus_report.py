"""Every variant of one set of result files against one variant of another, on one metric.

For comparisons across device calls whose files measured different metric lists (so ``baselines_report.py
--merge`` refuses them), e.g. the dense suite's runs against the tuned cross-encoder of the SJTF suite.
Per run: mean over seeds of the per-seed means (``--delta``: also the mean difference over the queries both
runs have, for runs that lack some); p is a paired two-sided t-test over the queries both have,
of seed-averaged values, uncorrected (the number of comparisons is printed; apply Holm when reading them
as a family); W/T/L counts the queries whose seed-averaged value is above, equal to or below the reference's.

    python bench/versus_report.py --reference docs/results/baselines/sjtf*.json.gz --reference-variant tuned \
        --runs docs/results/dense/dense.json.gz docs/results/dense/dense-seed2.json.gz --collection scifact
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from baselines_report import averaged, load, merge, seed_runs, wins_ties_losses  # noqa: E402

from auxir.evaluation.compare import paired_t_test  # noqa: E402


def runs_of(paths: list[str], collection: str) -> dict[str, dict]:
    """label -> seed -> metric -> query -> value; labels are the variant and ``variant ⊕ first stage``."""
    data = merge([load(p) for p in paths]) if len(paths) > 1 else load(paths[0])
    out = {}
    for kind, suffix in (("reranked", ""), ("fused", " ⊕ first stage")):
        for (c, variant), per_seed in seed_runs(data["jobs"], kind).items():
            if c == collection:
                out[variant + suffix] = per_seed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", nargs="+", required=True, help="result files of the reference variant")
    parser.add_argument("--reference-variant", required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="result files of the variants compared")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--metric", default="nDCG@10")
    parser.add_argument("--only", nargs="*", default=None, help="only these variants (and their fused rows)")
    parser.add_argument(
        "--delta",
        action="store_true",
        help="each cell also gives the mean difference over the queries both have and their number "
        "(for runs that lack some queries, e.g. cross-validation folds that did not finish)",
    )
    args = parser.parse_args()

    references = runs_of(args.reference, args.collection)
    ref_names = [args.reference_variant, args.reference_variant + " ⊕ first stage"]
    missing = [n for n in ref_names[:1] if n not in references]
    if missing:
        raise SystemExit(f"no {missing[0]!r} runs for {args.collection} in {args.reference}")
    refs = {n: averaged(references[n], args.metric) for n in ref_names if n in references}
    runs = runs_of(args.runs, args.collection)
    if args.only:
        runs = {k: v for k, v in runs.items() if k.removesuffix(" ⊕ first stage") in args.only}

    def mean_sd(per_seed):
        means = [statistics.fmean(r[args.metric].values()) for r in per_seed.values()]
        return statistics.fmean(means), statistics.stdev(means) if len(means) > 1 else 0.0, len(means)

    header = " | ".join(f"vs {n}" for n in refs)
    print(
        f"### {args.collection}, {args.metric}, uncorrected paired t-tests ({len(runs) * len(refs)} comparisons)\n"
    )
    print(f"| run | seeds | {args.metric} | {header} |")
    print("|---|---:|---:|" + "---:|" * len(refs))
    for name, per_seed in [(n, references[n]) for n in refs] + sorted(runs.items()):
        mean, sd, seeds = mean_sd(per_seed)
        values = averaged(per_seed, args.metric)
        cells = []
        for ref_name, ref in refs.items():
            common = sorted(set(values) & set(ref))
            if name == ref_name:
                cells.append("—")
                continue
            p = paired_t_test([values[q] for q in common], [ref[q] for q in common]).p
            diffs = [values[q] - ref[q] for q in common]
            delta = f"Δ {statistics.fmean(diffs):+.4f} on {len(diffs)} queries, " if args.delta else ""
            cells.append(f"{delta}p = {p:.2g}, W/T/L {wins_ties_losses(diffs)}")
        print(f"| {name} | {seeds} | {mean:.4f} ± {sd:.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
